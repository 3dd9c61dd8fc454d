"""Helpers of the operations tests: run a command as a user would, and the collectors they use."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import orjson
from click.testing import CliRunner, Result

from tests.conftest import write_config

MODEL = {"model_user_id": "clarifai", "model_app_id": "main", "model_id": "general-image-recognition"}


async def invoke(command: click.Command, args: Sequence[str], env: Mapping[str, str] | None = None) -> Result:
    """Run a command in a thread (it runs its own event loop), as ``collectors ...`` would."""
    return await asyncio.to_thread(CliRunner().invoke, command, list(args), env=dict(env or {}))


async def invoke_json(command: click.Command, args: Sequence[str], env: Mapping[str, str] | None = None) -> Any:
    result = await invoke(command, [*args, "--json"], env)
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


def config(path: Path, base_url: str, key_env: str = "TEST_PETS_KEY") -> Path:
    """Two collectors into ann/pets: a quarter of everything, and all of bob's predictions."""
    destination = {"base_url": base_url, "user_id": "ann", "app_id": "pets", "key_env": key_env}
    return write_config(
        path,
        {
            "collectors": [
                {"id": "quarter", "source": MODEL, "destination": destination, "pre_queue_random_sample": 0.25},
                {
                    "id": "bob-all",
                    "source": {**MODEL, "caller_user_id": "bob"},
                    "destination": destination,
                    "pre_queue_workflow_id": "everything",
                },
            ],
            "workflows": [{"id": "everything", "nodes": [{"operator": "random_sample", "keep_fraction": 1.0}]}],
        },
    )
