"""`collectors tail` shows a topic's records decoded: JSON, text, or base64 for other bytes."""

from __future__ import annotations

import asyncio
import shlex
import subprocess

import orjson
import pytest
from click.testing import CliRunner

from streams.tools.cli import main
from streams.tools.localkafka.broker import LocalKafka

pytestmark = pytest.mark.kafka


def test_tail_from_beginning_decodes_every_kind_of_record(kafka: LocalKafka, topic_factory, producer_factory):
    topic = asyncio.run(topic_factory("letters", partitions=1))
    asyncio.run(producer_factory(topic, [b'{"reason": "invalid_json", "n": 1}', b"plain text", b"\xff\xfe"]))
    result = CliRunner().invoke(
        main,
        ["tail", topic, "--broker", f"kafka://{kafka.bootstrap_servers}", "--from-beginning", "-n", "3", "--json"],
    )
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [line["value"] for line in lines] == [
        {"reason": "invalid_json", "n": 1},
        "plain text",
        {"base64": "//4="},
    ]
    assert [line["offset"] for line in lines] == [0, 1, 2]


def test_tail_of_a_missing_topic_is_a_usage_error(kafka: LocalKafka) -> None:
    result = CliRunner().invoke(
        main, ["tail", "no-such-topic-here", "--broker", f"kafka://{kafka.bootstrap_servers}", "-n", "1"]
    )
    assert result.exit_code == 2
    assert "does not exist" in result.output
    hinted = result.output.split("`")[1]  # the command the hint suggests runs as written
    assert hinted.startswith("kcat -L -b 127.0.0.1:")
    listed = subprocess.run(shlex.split(hinted), capture_output=True, text=True, timeout=30, check=False)
    assert listed.returncode == 0, listed.stderr
    assert f"broker 1 at {kafka.bootstrap_servers}" in listed.stdout


def test_produce_reports_progress_in_lines_and_tail_reads_it_back(kafka: LocalKafka, unique: str, tmp_path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b'{"id": "evt-1"}\n{"id": "evt-2"}\n\n{"id": "evt-3"}\n')
    broker = ["--broker", f"kafka://{kafka.bootstrap_servers}"]
    produced = CliRunner().invoke(main, ["produce", "--events", str(events), *broker, "--topic", f"{unique}-p"])
    assert produced.exit_code == 0, produced.output
    assert produced.stdout == f"published 3 events to {unique}-p\n"
    assert produced.stderr.splitlines()[-1].startswith(f"publishing to {unique}-p: 3/3 (100%)")
    tailed = CliRunner().invoke(main, ["tail", f"{unique}-p", *broker, "--from-beginning", "-n", "3", "--json"])
    assert sorted(orjson.loads(line)["key"] for line in tailed.stdout.splitlines()) == ["evt-1", "evt-2", "evt-3"]
