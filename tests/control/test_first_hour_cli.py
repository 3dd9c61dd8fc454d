"""The management commands as a new user meets them, against the running API: the examples apply, items
round-trip through `get -o yaml|json`, `diff` and `--dry-run` say what would change, the key names its app,
hints run as written, deletes ask, contexts give the defaults and flags and variables override them."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner, Result

from streams.services.destination.store import Store
from streams.tools.cli import main

from .support import Api

pytestmark = pytest.mark.kafka

EXAMPLES = Path(__file__).parents[2] / "examples"
EXAMPLE = EXAMPLES / "active-learning" / "collectors.yaml"


class Demo:
    """Runs `collectors ...` as user demo, owner of the examples' app demo/pets."""

    def __init__(self, api_url: str, destination: str, store: Store) -> None:
        self.post_key = "demo-pets-post-key-000001"
        store.bootstrap("demo", "pets", self.post_key, ["PostInputs"])
        self.owner_key = store.create_key("demo", None, ["All"])[1]
        self.pets_key = store.create_key("demo", "pets", ["ListInputs"])[1]
        self.env = {
            "COLLECTORS_API": api_url,
            "COLLECTORS_API_KEY": self.owner_key,
            "PETS_APP_KEY": self.post_key,
            "COLLECTORS_DESTINATION_URL": destination,
        }

    async def __call__(self, *args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        runner = CliRunner()
        merged = {**self.env, **(env or {})}
        return await asyncio.to_thread(runner.invoke, main, list(args), env=merged, input=input)

    async def json(self, *args: str, **kwargs: Any) -> Any:
        result = await self(*args, "--json", **kwargs)
        assert result.exit_code == 0, result.output
        return orjson.loads(result.stdout)


@pytest.fixture
def demo(api_url: str, destination: str, store: Store) -> Demo:
    return Demo(api_url, destination, store)


def outcomes(report: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(r["kind"], r["id"]): r["outcome"] for r in report["results"]}


async def test_every_example_applies_through_the_api(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    documents = [p for p in sorted(EXAMPLES.rglob("*.yaml")) if "collectors" in (yaml.safe_load(p.read_text()) or {})]
    assert EXAMPLE in documents
    monkeypatch.chdir(EXAMPLE.parent)  # a graph path is also found from the document's folder up
    for path in documents:
        first = await demo.json("apply", "-f", str(path))
        assert set(outcomes(first).values()) == {"created"}, first
        again = await demo.json("apply", "-f", str(path))
        assert set(outcomes(again).values()) == {"unchanged"}, again
    stored = await demo.json("get", "uncertain-pets", "--workflows", "--user", "demo", "--app", "pets")
    (concept_map,) = [n for n in stored["workflow"]["nodes"] if n["operator"] == "concept_map"]
    graph = yaml.safe_load((EXAMPLE.parent / "graph.yaml").read_text())
    assert concept_map["graph"] == graph  # sent inline, as the file has it


async def test_get_output_round_trips_and_diff_and_dry_run_say_what_would_change(demo: Demo, tmp_path: Path) -> None:
    assert (await demo("apply", "-f", str(EXAMPLE))).exit_code == 0
    app = ("--user", "demo", "--app", "pets")
    for fmt in ("yaml", "json"):
        got = await demo("get", "pets-uncertain", *app, "-o", fmt)
        assert got.exit_code == 0, got.output
        assert (
            demo.post_key[:8] not in got.stdout
            and "key" not in yaml.safe_load(got.stdout)["collectors"][0]["destination"]
        )
        copy = tmp_path / f"copy.{fmt}"
        copy.write_text(got.stdout)
        same = await demo("diff", "-f", str(copy))
        assert same.exit_code == 0, (same.output, got.stdout)
        assert set(outcomes(await demo.json("apply", "-f", str(copy))).values()) == {"unchanged"}

    changed = tmp_path / "changed.yaml"
    document = yaml.safe_load((await demo("get", "pets-uncertain", *app, "-o", "yaml")).stdout)
    document["collectors"][0]["description"] = "reviewed by the team"
    document["workflows"][0]["nodes"][-1]["per_hour"] = 50
    changed.write_text(yaml.safe_dump(document))
    diff = await demo("diff", "-f", str(changed))
    assert diff.exit_code == 1
    assert "+description: reviewed by the team" in diff.stdout
    assert "+  per_hour: 50" in diff.stdout and "-  per_hour: 500" in diff.stdout
    assert "live/collectors/demo/pets/pets-uncertain" in diff.stdout

    dry = await demo.json("apply", "-f", str(changed), "--dry-run")
    assert outcomes(dry) == {
        ("workflow", "uncertain-pets"): "would overwrite",
        ("workflow", "clean-images"): "unchanged",
        ("collector", "pets-uncertain"): "would overwrite",
    }
    shown = await demo.json("get", "pets-uncertain", *app)
    assert shown["collector"]["description"] != "reviewed by the team"  # the dry run changed nothing
    applied = await demo.json("apply", "-f", str(changed))
    assert outcomes(applied) == {k: v.replace("would overwrite", "overwritten") for k, v in outcomes(dry).items()}
    assert (await demo("diff", "-f", str(changed))).exit_code == 0


async def test_the_key_names_its_app(demo: Demo, api: Api) -> None:
    assert (await demo("apply", "-f", str(EXAMPLE))).exit_code == 0
    listed = await demo.json("list", env={"COLLECTORS_API_KEY": demo.pets_key})
    assert [c["id"] for c in listed["collectors"]] == ["pets-uncertain"]
    got = await demo.json("get", "pets-uncertain", env={"COLLECTORS_API_KEY": demo.pets_key})
    assert got["collector"]["destination"]["app_id"] == "pets"
    user_wide = await demo("list")
    assert user_wide.exit_code == 2
    assert "every app of user demo" in user_wide.output and "--app" in user_wide.output
    status, body = await api.call("GET", "/v2/myscopes", key=demo.pets_key)
    assert (status, body["app"]) == (200, {"id": "pets", "user_id": "demo"})
    assert "ListInputs" in body["scopes"] and "All" not in body["scopes"]
    status, body = await api.call("GET", "/v2/myscopes", key="not-a-key-000000000")
    assert status == 401


async def test_create_conflict_hint_runs(demo: Demo) -> None:
    assert (await demo("create", "-f", str(EXAMPLE))).exit_code == 0
    again = await demo("create", "-f", str(EXAMPLE))
    assert again.exit_code == 3
    hinted = again.output.split("`")[1]
    assert hinted == f"collectors apply -f {shlex.quote(str(EXAMPLE))}"
    ran = await demo(*shlex.split(hinted)[1:])
    assert ran.exit_code == 0, ran.output
    assert "unchanged" in ran.output


async def test_pause_resume_print_and_delete_all_asks(demo: Demo) -> None:
    assert (await demo("apply", "-f", str(EXAMPLE))).exit_code == 0
    app = ("--user", "demo", "--app", "pets")
    paused = await demo("pause", "pets-uncertain", *app)
    assert (paused.exit_code, paused.output) == (0, "collector pets-uncertain of demo/pets: paused\n")
    twice = await demo("pause", "pets-uncertain", *app)
    assert twice.output == "collector pets-uncertain of demo/pets: already paused\n"
    resumed = await demo("resume", "pets-uncertain", *app)
    assert resumed.output == "collector pets-uncertain of demo/pets: resumed\n"

    declined = await demo("delete", "--all", *app, input="n\n")
    assert declined.exit_code == 1
    assert "delete every collector of app demo/pets?" in declined.output
    assert len((await demo.json("list", *app))["collectors"]) == 1
    accepted = await demo("delete", "--all", *app, input="y\n")
    assert accepted.exit_code == 0 and "deleted 1 collectors: pets-uncertain" in accepted.output
    assert (await demo("delete", "--all", "--workflows", "--yes", *app)).exit_code == 0
    assert (await demo.json("list", "--workflows", *app))["workflows"] == []


async def test_contexts_give_defaults_and_flags_and_variables_override(demo: Demo, api_url: str) -> None:
    assert (await demo("apply", "-f", str(EXAMPLE))).exit_code == 0
    made = await demo(
        "config", "set-context", "demo", "--api", api_url, "--key-env", "DEMO_OWNER_KEY", "--user", "demo",
        "--app", "pets", "--use",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    bare = {"COLLECTORS_API": "", "COLLECTORS_API_KEY": "", "DEMO_OWNER_KEY": demo.owner_key}
    listed = await demo.json("list", env=bare)
    assert [c["id"] for c in listed["collectors"]] == ["pets-uncertain"]
    dead = "http://127.0.0.1:9"
    assert (await demo("list", "--api", dead, env=bare)).exit_code == 4  # a flag beats the context
    assert (await demo("list", env={**bare, "COLLECTORS_API": dead})).exit_code == 4  # so does a variable
    other_app = await demo("list", "--app", "other", env=bare)  # the flag's app, the context's user
    assert other_app.exit_code == 3 and "app demo/other does not exist" in other_app.output
    assert (await demo("config", "set-context", "far", "--api", dead, "--key-env", "DEMO_OWNER_KEY")).exit_code == 0
    assert (await demo("--context", "far", "list", "--app", "pets", env=bare)).exit_code == 4
    assert (await demo("list", env={**bare, "COLLECTORS_CONTEXT": "far"})).exit_code == 4
    assert (await demo.json("list", env=bare))["collectors"]  # the current context is still demo
