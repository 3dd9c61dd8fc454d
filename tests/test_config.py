"""Configuration errors are found at load, with a message naming what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from streams.config import ConfigError, load_index, read_document
from streams.workflows import WorkflowError

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
