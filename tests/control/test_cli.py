"""The management commands through click's runner, against the running API (run in a thread, so the
in-process API keeps serving on the test's event loop)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localstack import free_port, get_json, stop_process, wait_http
from streams.tools.manage.commands import MANAGEMENT_COMMANDS, control
from tests.conftest import write_config

from .support import Keys

pytestmark = pytest.mark.kafka


class Cli:
    """Runs `control` subcommands as alice, against the test's API."""

    def __init__(self, api_url: str, key: str) -> None:
        self.env = {"COLLECTORS_API": api_url, "COLLECTORS_API_KEY": key}

    async def __call__(self, *args: str, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        return await asyncio.to_thread(runner.invoke, control, list(args), env={**self.env, **(env or {})})

    async def json(self, *args: str, **kwargs: Any) -> Any:
        result = await self(*args, "--json", **kwargs)
        assert result.exit_code == 0, result.output
        return orjson.loads(result.output)


@pytest.fixture
def cli(api_url: str, keys: Keys) -> Cli:
    return Cli(api_url, keys.owner)


def document(destination: str, keys: Keys, description: str = "") -> dict[str, Any]:
    source = {"model_user_id": "clarifai", "model_app_id": "main", "model_id": "general-image-recognition"}
    return {
        "collectors": [
            {
                "id": "dogs",
                "description": description,
                "source": source,
                "destination": {"base_url": destination, "user_id": "alice", "app_id": "photos", "key": keys.post},
                "pre_queue_workflow_id": "half",
            },
            {
                "id": "clips",
                "source": source,
                "destination": {
                    "base_url": destination,
                    "user_id": "alice",
                    "app_id": "videos",
                    "key_env": "VIDEOS_KEY",
                },
                "pre_queue_workflow_id": "half",
            },
        ],
        "workflows": [{"id": "half", "nodes": [{"operator": "random_sample", "keep_fraction": 0.5}]}],
    }


async def stored(cli: Cli) -> dict[str, Any]:
    """Everything of both apps, as the API lists it."""
    state = {}
    for app in ("photos", "videos"):
        for flag in ((), ("--workflows",)):
            state[(app, *flag)] = await cli.json("list", "--user", "alice", "--app", app, *flag)
    return state


async def test_apply_is_idempotent(cli: Cli, destination: str, keys: Keys, tmp_path: Path) -> None:
    path = write_config(tmp_path / "collectors.yaml", document(destination, keys))
    env = {"VIDEOS_KEY": keys.videos_post}
    first = await cli.json("apply", "-f", str(path), env=env)
    assert sorted((r["kind"], r["app_id"], r["id"], r["outcome"]) for r in first["results"]) == [
        ("collector", "photos", "dogs", "created"),
        ("collector", "videos", "clips", "created"),
        ("workflow", "photos", "half", "created"),
        ("workflow", "videos", "half", "created"),
    ]
    before = await stored(cli)
    second = await cli.json("apply", "-f", str(path), env=env)
    assert {r["outcome"] for r in second["results"]} == {"unchanged"}
    assert await stored(cli) == before

    write_config(path, document(destination, keys, description="changed"))
    third = await cli.json("apply", "-f", str(path), env=env)
    outcomes = {(r["kind"], r["app_id"], r["id"]): r["outcome"] for r in third["results"]}
    assert outcomes[("collector", "photos", "dogs")] == "overwritten"
    assert outcomes[("collector", "videos", "clips")] == "unchanged"
    table = await cli("apply", "-f", str(path), env=env)
    assert table.exit_code == 0
    assert "unchanged" in table.output and keys.post not in table.output


async def test_apply_without_the_key_variable_is_a_usage_error(
    cli: Cli, destination: str, keys: Keys, tmp_path: Path
) -> None:
    path = write_config(tmp_path / "collectors.yaml", document(destination, keys))
    result = await cli("apply", "-f", str(path))
    assert result.exit_code == 2
    assert "VIDEOS_KEY" in result.output


async def test_create_list_get_pause_resume_delete(cli: Cli, destination: str, keys: Keys, tmp_path: Path) -> None:
    path = write_config(tmp_path / "collectors.yaml", document(destination, keys))
    env = {"VIDEOS_KEY": keys.videos_post}
    created = await cli("create", "-f", str(path), env=env)
    assert created.exit_code == 0, created.output
    again = await cli("create", "-f", str(path), env=env)
    assert again.exit_code == 3
    assert "already exist" in again.output

    app = ("--user", "alice", "--app", "photos")
    listed = await cli("list", *app)
    assert listed.exit_code == 0
    assert "dogs" in listed.output and "active" in listed.output and "pre half" in listed.output
    shown = await cli.json("get", "dogs", *app)
    assert shown["collector"]["destination"]["key"] == "alic…"
    assert (await cli("get", "half", "--workflows", *app)).exit_code == 0

    paused = await cli.json("pause", "dogs", *app)
    assert paused["collectors"][0]["status"]["code"] == 52002
    resumed = await cli.json("resume", "dogs", *app)
    assert resumed["collectors"][0]["status"]["code"] == 52001

    in_use = await cli("delete", "half", "--workflows", *app)
    assert in_use.exit_code == 3
    assert "'dogs'" in in_use.output
    missing = await cli("get", "nope", *app)
    assert missing.exit_code == 3
    assert "not found" in missing.output.lower()
    deleted = await cli.json("delete", "--all", "--yes", *app)
    assert deleted == {"deleted": ["dogs"]}
    assert (await cli.json("delete", "half", "--workflows", *app)) == {"deleted": ["half"]}
    assert (await cli("list", *app)).output.strip() == "no collectors"


async def test_patch_from_a_file(cli: Cli, destination: str, keys: Keys, tmp_path: Path) -> None:
    path = write_config(tmp_path / "collectors.yaml", document(destination, keys))
    env = {"VIDEOS_KEY": keys.videos_post}
    missing = await cli("patch", "-f", str(path), env=env)
    assert missing.exit_code == 3
    assert (await cli("create", "-f", str(path), env=env)).exit_code == 0
    write_config(path, document(destination, keys, description="patched"))
    patched = await cli.json("patch", "-f", str(path), env=env)
    outcomes = {(r["kind"], r["app_id"], r["id"]): r["outcome"] for r in patched["results"]}
    assert outcomes == {
        ("workflow", "photos", "half"): "unchanged",
        ("workflow", "videos", "half"): "unchanged",
        ("collector", "photos", "dogs"): "overwritten",
        ("collector", "videos", "clips"): "unchanged",
    }
    shown = await cli.json("get", "dogs", "--user", "alice", "--app", "photos")
    assert shown["collector"]["description"] == "patched"


async def test_usage_errors_refusals_and_outages(cli: Cli, keys: Keys) -> None:
    no_key = await cli("list", "--user", "alice", "--app", "photos", env={"COLLECTORS_API_KEY": ""})
    assert no_key.exit_code == 2
    assert "COLLECTORS_API_KEY" in no_key.output
    no_app = await cli("list")
    assert no_app.exit_code == 2
    assert "--app" in no_app.output and "alice" in no_app.output
    neither = await cli("delete", "--user", "alice", "--app", "photos")
    assert neither.exit_code == 2
    refused = await cli("list", "--user", "bob", "--app", "other")
    assert refused.exit_code == 3
    assert "11007" in refused.output
    gone = await cli(
        "list", "--user", "alice", "--app", "photos", env={"COLLECTORS_API": f"http://127.0.0.1:{free_port()}"}
    )
    assert gone.exit_code == 4
    assert "control serve" in gone.output


def test_management_commands_can_join_the_top_level() -> None:
    assert {command.name for command in MANAGEMENT_COMMANDS} == {
        "create",
        "apply",
        "list",
        "get",
        "patch",
        "delete",
        "pause",
        "resume",
    }
    assert set(control.commands) == {"serve", *(command.name for command in MANAGEMENT_COMMANDS)}


async def test_serve_runs_the_api_until_sigterm(
    kafka: LocalKafka, control_topic: str, destination: str, tmp_path: Path
) -> None:
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    command = [sys.executable, "-c", "from streams.tools.manage.commands import control; control()", "serve"]
    options = ["--port", str(port), "--broker", f"kafka://{kafka.bootstrap_servers}", "--topic", control_topic]
    process = subprocess.Popen([*command, *options, "--auth-url", destination], stdout=log, stderr=subprocess.STDOUT)
    try:
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/readyz", timeout_s=30, process=process)
        document = await asyncio.to_thread(get_json, f"http://127.0.0.1:{port}/openapi.json")
        assert document["info"]["title"] == "Collectors management API"
    finally:
        assert stop_process(process) == 0
        log.close()
    assert "management API listening" in (tmp_path / "serve.log").read_text()
