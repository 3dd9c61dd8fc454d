"""`collectors simulate` runs model nodes against their endpoints, or skips them with --offline and says so."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import yaml
from click.testing import CliRunner

from streams.services.model.predict import predict_text
from streams.tools.cli import main
from streams.tools.localstack import free_port
from tests.models.support import DESTINATION, SOURCE, text_event

TEXTS = ["a dog in the park", "my cat and my dog", "pizza for dinner", "a red bus", "great food, loved it"]


@pytest.fixture(scope="module")
def model_url() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "streams", "model", "serve", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def files(tmp_path: Path, url: str) -> tuple[Path, Path]:
    node = {"operator": "model", "protocol": "open_inference", "url": url, "model_id": "reference"}
    document = {
        "collectors": [{"id": "c", "source": SOURCE, "destination": DESTINATION, "pre_queue_workflow_id": "w"}],
        "workflows": [{"id": "w", "nodes": [node, {"operator": "concept_threshold", "concepts": {"animal": 0.1}}]}],
    }
    config = tmp_path / "collectors.yaml"
    config.write_text(yaml.safe_dump(document))
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(orjson.dumps(text_event(f"e{i}", t)) for i, t in enumerate(TEXTS)))
    return config, events


def test_simulate_calls_the_model(tmp_path: Path, model_url: str) -> None:
    config, events = files(tmp_path, model_url)
    result = CliRunner().invoke(main, ["simulate", "--config", str(config), "--events", str(events), "--json"])
    assert result.exit_code == 0, result.output
    (collector,) = orjson.loads(result.stdout)["collectors"]
    expected = [f"e{i}" for i, t in enumerate(TEXTS) if predict_text(t).scores["animal"] > 0]
    assert collector["selected"] == expected and 0 < len(expected) < len(TEXTS)
    assert "call their models" in result.stderr and "5 inputs" in result.stderr


def test_simulate_offline_skips_model_nodes(tmp_path: Path) -> None:
    config, events = files(tmp_path, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    args = ["simulate", "--config", str(config), "--events", str(events), "--json", "--offline"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (collector,) = orjson.loads(result.stdout)["collectors"]
    assert collector["funnel"]["model_skipped:w/0:model"] == len(TEXTS)
    assert "skipped (--offline)" in result.stderr
