"""`collectors simulate` reports, per collector, the event ids it would post, in input order."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import orjson
from click.testing import CliRunner

from streams.core.operators.random_sample import keeps
from streams.tools.cli import main

SAMPLES = resources.files("streams.tools.samples")


def test_simulate_json_on_the_bundled_samples(tmp_path: Path) -> None:
    config = Path(str(SAMPLES.joinpath("collectors.yaml")))
    events = Path(str(SAMPLES.joinpath("predictions.jsonl")))
    result = CliRunner().invoke(main, ["simulate", "--config", str(config), "--events", str(events), "--json"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    by_id = {c["id"]: c for c in report["collectors"]}

    decoded = []
    for line in events.read_bytes().splitlines():
        try:
            decoded.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
    general = [
        e["id"] for e in decoded if e.get("output", {}).get("model", {}).get("id") == "general-image-recognition"
    ]
    assert by_id["general-sample"]["selected"] == [e for e in general if keeps("demo/training/general-sample", e, 0.2)]
    assert by_id["general-sample"]["funnel"]["seen"] == len(general)
    assert report["events"] == {"events": 602, "decoded": 600, "dead_lettered": 2}
    assert [i["line"] for i in report["invalid"]] == [301, 602]


def test_simulate_usage_error_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("collectors: [{id: x}]\n", encoding="utf-8")
    events = tmp_path / "e.jsonl"
    events.write_text("", encoding="utf-8")
    result = CliRunner().invoke(main, ["simulate", "--config", str(bad), "--events", str(events)])
    assert result.exit_code == 2
    assert "invalid collectors configuration" in result.output
