"""LocalKafka without a broker: settings, rendered config, pid safety, CLI messages."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.tools.localkafka import LocalKafka, LocalKafkaError
from streams.tools.localkafka.broker import _cluster_id
from streams.tools.localkafka.commands import kafka


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("COLLECTORS_KAFKA_DIST", raising=False)
    monkeypatch.setenv("COLLECTORS_KAFKA_HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    broker = LocalKafka()
    assert (broker.version, broker.host, broker.port, broker.controller_port, broker.heap) == (
        "3.9.1", "127.0.0.1", 9092, 9093, "512m",
    )  # fmt: skip
    assert broker.home == tmp_path
    assert broker.libs_dir == tmp_path / "cache" / "collectors" / "kafka" / "dist" / "3.9.1" / "libs"
    assert broker.run_dir == tmp_path / "run" / "9092"
    assert broker.bootstrap_servers == "127.0.0.1:9092"


def test_dist_env_and_controller_port(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLLECTORS_KAFKA_DIST", str(tmp_path / "shared"))
    broker = LocalKafka(port=19192, home=tmp_path)
    assert broker.controller_port == 19193
    assert broker.libs_dir == tmp_path / "shared" / "3.9.1" / "libs"
    with pytest.raises(LocalKafkaError):
        LocalKafka(port=19192, controller_port=19192, home=tmp_path)


def test_server_properties(tmp_path: Path) -> None:
    broker = LocalKafka(port=19192, home=tmp_path)
    props = dict(line.split("=", 1) for line in broker._render_server_properties().splitlines()[1:])
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19192,CONTROLLER://127.0.0.1:19193"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19192"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19193"
    assert props["log.dirs"] == str(tmp_path / "run" / "19192" / "data")
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["auto.create.topics.enable"] == "true"


def test_cluster_id_is_kafka_uuid() -> None:
    for _ in range(50):
        cid = _cluster_id()
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_never_signals_a_foreign_pid(tmp_path: Path) -> None:
    broker = LocalKafka(port=19192, home=tmp_path)
    broker.run_dir.mkdir(parents=True)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        broker.pid_file.write_text(f"{stranger.pid}\n")
        assert broker.status().state == "stopped"
        assert broker.down(timeout=1) is False
        assert stranger.poll() is None
        assert not broker.pid_file.exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_fetch_names_missing_maven(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(LocalKafkaError, match="Install maven"):
        LocalKafka(home=tmp_path, dist=tmp_path / "dist").fetch()


def test_cli_status_stopped(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(kafka, ["status", "--port", "19192", "--home", str(tmp_path)])
    assert result.exit_code == 1
    assert "stopped" in result.output and "collectors kafka up --port 19192" in result.output
    result = runner.invoke(kafka, ["status", "--json", "--port", "19192", "--home", str(tmp_path)])
    assert json.loads(result.output)["state"] == "stopped"
