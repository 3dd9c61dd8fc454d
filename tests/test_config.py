"""Configuration errors are found at load, with a message naming what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from streams.core.config import ConfigError, load_index, read_document
from streams.core.ledger import Ledger
from streams.core.selection import select
from streams.core.workflows import WorkflowError

SOURCE = {"model_user_id": "clarifai", "model_app_id": "main", "model_id": "m"}
DEST = {"base_url": "http://127.0.0.1:1", "user_id": "u", "app_id": "a", "key": "k" * 16}


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def _collector(**fields: object) -> dict[str, object]:
    return {"id": "c1", "source": SOURCE, "destination": DEST, **fields}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"collectors": [_collector()]}, "needs at least one of"),
        ({"collectors": [_collector(pre_queue_random_sample=0)]}, "pre_queue_random_sample"),
        ({"collectors": [_collector(pre_queue_random_sample=1.5)]}, "pre_queue_random_sample"),
        ({"collectors": [_collector(pre_queue_workflow_id="nope")]}, "'nope' is not a workflow"),
        ({"collectors": [_collector(pre_queue_random_sample=0.5)] * 2}, "appears twice"),
        ({"collectors": [_collector(pre_queue_random_sample=0.5, colour="red")]}, "colour"),
        (
            {"collectors": [_collector(pre_queue_random_sample=0.5, destination={**DEST, "key_env": "X"})]},
            "exactly one of `key` or `key_env`",
        ),
    ],
)
def test_document_errors(tmp_path: Path, document: object, message: str) -> None:
    with pytest.raises(ConfigError, match="invalid collectors configuration") as caught:
        read_document(_write(tmp_path, document))
    assert message in str(caught.value)


def test_missing_key_env_names_the_collector_and_variable(tmp_path: Path) -> None:
    dest = {k: v for k, v in DEST.items() if k != "key"} | {"key_env": "NOT_SET_ANYWHERE"}
    path = _write(tmp_path, {"collectors": [_collector(destination=dest, pre_queue_random_sample=0.5)]})
    with pytest.raises(ConfigError, match="collector 'c1': environment variable NOT_SET_ANYWHERE"):
        load_index(path, environ={})
    assert load_index(path, environ={"NOT_SET_ANYWHERE": "secret-key-value"}).get("u/a/c1") is not None


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ({"operator": "no_such_op"}, "node 0 ('no_such_op'): unknown operator"),
        ({"operator": "random_sample"}, "field `keep_fraction`: Field required"),
        ({"operator": "random_sample", "keep_fraction": "half"}, "field `keep_fraction`"),
        ({"operator": "random_sample", "keep_fraction": 0.5, "seed": 1}, "field `seed`"),
        ({"operator": "any", "nodes": []}, "field `nodes` must be a non-empty list"),
    ],
)
def test_workflow_errors_name_collector_workflow_node_and_field(tmp_path: Path, node: object, message: str) -> None:
    document = {"collectors": [_collector(pre_queue_workflow_id="w")], "workflows": [{"id": "w", "nodes": [node]}]}
    with pytest.raises(WorkflowError) as caught:
        load_index(_write(tmp_path, document))
    assert "collector 'c1', workflow 'w'" in str(caught.value)
    assert message in str(caught.value)


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_document(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("collectors: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_document(bad)


def test_collectors_naming_one_workflow_share_its_steps_but_decide_for_themselves(tmp_path: Path) -> None:
    """A workflow is compiled once per load; each collector's decisions stay its own (sampling is per
    collector), and a workflow that fails names each collector that uses it."""
    sample = {"id": "half", "nodes": [{"operator": "random_sample", "keep_fraction": 0.5}]}
    other = {"id": "other", "nodes": [{"operator": "random_sample", "keep_fraction": 0.5}]}
    document = {
        "collectors": [
            _collector(id="c1", pre_queue_workflow_id="half"),
            _collector(id="c2", pre_queue_workflow_id="half"),
            _collector(id="c3", pre_queue_workflow_id="other"),
        ],
        "workflows": [sample, other],
    }
    index = load_index(_write(tmp_path, document))
    c1, c2, c3 = (index.get(f"u/a/{name}") for name in ("c1", "c2", "c3"))
    assert c1 is not None and c2 is not None and c3 is not None
    assert c1.pre_queue.steps[0] is c2.pre_queue.steps[0]
    assert c1.pre_queue.steps[0] is not c3.pre_queue.steps[0]

    kept: dict[str, set[str]] = {"u/a/c1": set(), "u/a/c2": set()}
    for number in range(200):
        event = {
            "id": f"e{number}",
            "output": {
                "model": {"user_id": "clarifai", "app_id": "main", "id": "m"},
                "input": {"id": f"i{number}", "data": {"image": {"url": "https://example.com/x.jpg"}}},
                "data": {"concepts": []},
            },
        }
        queued, _ = select(event, index, Ledger())
        for collector, _record in queued:
            if collector.id in kept:
                kept[collector.id].add(event["id"])
    assert 60 < len(kept["u/a/c1"]) < 140 and 60 < len(kept["u/a/c2"]) < 140
    assert kept["u/a/c1"] != kept["u/a/c2"]

    broken = {"id": "half", "nodes": [{"operator": "random_sample"}]}
    document = {**document, "workflows": [broken, other]}
    with pytest.raises(WorkflowError, match="collector 'c1', workflow 'half'"):
        load_index(_write(tmp_path, document))
