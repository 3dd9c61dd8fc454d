"""What a new user meets first, without a broker: configuration interpolation, validate, version, schema,
simulate's progress and --offline, the width of funnels, progress lines, contexts, the jar cache."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from importlib import resources
from pathlib import Path

import click
import orjson
import pytest
import yaml
from click.testing import CliRunner, Result

from schemas.export import SCHEMA_FILES
from streams.core.config import ConfigError, read_document
from streams.core.interpolation import InterpolationError, interpolate
from streams.tools import contexts
from streams.tools.cli import main
from streams.tools.display import WIDTH, funnel_table
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.localkafka.commands import kafka
from streams.tools.progress import progress
from streams.tools.samples.generate import sample_image, shipped_samples

SAMPLES = resources.files("streams.tools.samples")
EXAMPLES = Path(__file__).parents[2] / "examples"
EXAMPLE = EXAMPLES / "active-learning" / "collectors.yaml"
SAMPLE_EVENTS = Path(str(SAMPLES.joinpath("predictions.jsonl")))


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """`collectors ARGS...`, in this process."""
    return CliRunner().invoke(main, list(args), env=env)


# --- ${VAR} in configuration files ---------------------------------------------------------------------


def test_values_take_variables_and_defaults() -> None:
    environ = {"HOST": "10.0.0.7", "EMPTY": ""}
    document = {
        "a": "http://${HOST}:${PORT:-8080}/x",
        "b": ["${EMPTY:-fallback}", "$${HOST} stays", 3],
        "c": {"${HOST}": "keys are not read"},
    }
    assert interpolate(document, environ) == {
        "a": "http://10.0.0.7:8080/x",
        "b": ["fallback", "${HOST} stays", 3],
        "c": {"${HOST}": "keys are not read"},
    }


def test_every_missing_variable_is_named_with_where_it_is_used(tmp_path: Path) -> None:
    with pytest.raises(InterpolationError) as caught:
        interpolate({"x": [{"url": "${NOT_SET_A}"}], "y": "${NOT_SET_B}", "z": "${bad name}"}, {})
    message = str(caught.value)
    assert "x[0].url: environment variable NOT_SET_A is not set" in message
    assert "y: environment variable NOT_SET_B is not set" in message
    assert "z: ${bad name} is not a reference" in message
    path = tmp_path / "c.yaml"
    path.write_text(EXAMPLE.read_text().replace("${COLLECTORS_DESTINATION_URL:-", "${NOT_SET_URL}").replace(
        "http://127.0.0.1:8080}", ""), encoding="utf-8")  # fmt: skip
    with pytest.raises(ConfigError, match=r"collectors\[0\]\.destination\.base_url: environment variable NOT_SET_URL"):
        read_document(path, {})


def test_the_shipped_files_take_the_destination_from_the_environment() -> None:
    for path in (EXAMPLE, Path(str(SAMPLES.joinpath("collectors.yaml")))):
        default = read_document(path, {})
        moved = read_document(path, {"COLLECTORS_DESTINATION_URL": "http://127.0.0.1:18080"})
        assert {c.destination.base_url for c in default.collectors} == {"http://127.0.0.1:8080"}
        assert {c.destination.base_url for c in moved.collectors} == {"http://127.0.0.1:18080"}


# --- validate ----------------------------------------------------------------------------------------


def test_validate_lists_every_error_at_once_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    source = {"model_user_id": "u", "model_app_id": "a", "model_id": "m"}
    destination = {"base_url": "http://127.0.0.1:1", "user_id": "u", "app_id": "a", "key": "k" * 16}
    bad.write_text(
        yaml.safe_dump(
            {
                "colour": "red",
                "collectors": [
                    {"id": "a", "source": {"model_user_id": "u"}, "destination": destination, "status": "on"},
                    {"id": "b", "source": source, "destination": destination, "pre_queue_workflow_id": "w"},
                    {"id": "c", "source": source, "destination": destination, "post_queue_workflow_id": "gone"},
                ],
                "workflows": [{"id": "w", "nodes": [{"operator": "nope"}]}],
            }
        ),
        encoding="utf-8",
    )
    result = run("validate", "-f", str(bad), "-f", str(EXAMPLE), env={"PETS_APP_KEY": "x" * 16})
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 6, result.stderr
    for expected in ("colour: unknown field", "model_app_id", "model_id", "status", "'nope'", "'gone' is not"):
        assert any(expected in line for line in errors), (expected, errors)
    assert f"{EXAMPLE}: valid" in result.stdout


def test_validate_names_unset_variables_along_with_the_other_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        EXAMPLE.read_text().replace("${COLLECTORS_DESTINATION_URL:-http://127.0.0.1:8080}", "${UNSET_URL_1}")
        + "colour: red\n",
        encoding="utf-8",
    )
    result = run("validate", "-f", str(path), env={"PETS_APP_KEY": "k" * 16})
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {path}: collectors[0].destination.base_url: environment variable UNSET_URL_1 is not set "
        "(or write ${UNSET_URL_1:-default})",
        f"error: {path}: colour: unknown field (a document has `collectors` and `workflows`)",
    ]


def test_validate_accepts_every_example_and_warns_of_unset_keys() -> None:
    for path in sorted(EXAMPLES.rglob("collectors*.yaml")):
        result = run("validate", "-f", str(path), env={"PETS_APP_KEY": ""})
        assert result.exit_code == 0, result.output
        assert "PETS_APP_KEY is not set" in result.stderr


def test_validate_accepts_what_get_o_yaml_prints_and_warns_a_worker_cannot_run_it(tmp_path: Path) -> None:
    path = tmp_path / "got.yaml"
    source = {"model_user_id": "u", "model_app_id": "a", "model_id": "m"}
    destination = {"base_url": "http://127.0.0.1:1", "user_id": "u", "app_id": "a"}  # no key: apply keeps it
    collector = {"id": "c", "source": source, "destination": destination, "pre_queue_random_sample": 0.5}
    path.write_text(yaml.safe_dump({"collectors": [collector]}), encoding="utf-8")
    result = run("validate", "-f", str(path))
    assert result.exit_code == 0, result.output
    assert f"{path}: valid" in result.stdout
    assert "collector 'c': no key: apply keeps the one stored with it, a worker cannot run it" in result.stderr


def test_demo_on_a_taken_port_says_how_to_pick_another(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("demo", "--kafka-port", str(port), "--workdir", str(tmp_path / "demo"))
    assert result.exit_code == 1, result.output
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert "COLLECTORS_KAFKA_PORT=PORT make demo" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def _commands(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
    """Every command under ``command``, loading the lazy ones."""
    if not isinstance(command, click.Group):
        return [(path, command)]
    with click.Context(command) as ctx:
        subs = [(name, command.get_command(ctx, name)) for name in command.list_commands(ctx)]
    return [pair for name, sub in subs if sub is not None for pair in _commands(sub, f"{path} {name}")]


def test_every_option_of_every_command_says_what_it_does() -> None:
    silent = [
        f"{path} {param.opts[0]}"
        for path, command in _commands(main, "collectors")
        for param in command.params
        if isinstance(param, click.Option) and not param.help and "--help" not in param.opts
    ]
    assert len(_commands(main, "collectors")) > 40
    assert not silent, "options without a help line: " + ", ".join(silent)


def test_an_invalid_worker_setting_is_named_by_its_variable() -> None:
    result = run("worker", env={"COLLECTORS_PARTITIONS": "0", "COLLECTORS_POST_CONCURRENCY": "many"})
    assert result.exit_code == 2, result.output
    assert "COLLECTORS_PARTITIONS: Input should be greater than or equal to 1, got '0'" in result.stderr
    assert "COLLECTORS_POST_CONCURRENCY: Input should be a valid integer" in result.stderr


# --- version, schema ---------------------------------------------------------------------------------


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.output.startswith("collectors 0.")


def test_shell_completion_as_documented() -> None:
    collectors = Path(sys.executable).parent / "collectors"
    environ = {**os.environ, "_COLLECTORS_COMPLETE": "bash_source"}
    script = subprocess.run([collectors], env=environ, capture_output=True, text=True, timeout=60, check=True)
    assert "_collectors_completion" in script.stdout and "complete " in script.stdout
    environ |= {"_COLLECTORS_COMPLETE": "bash_complete", "COMP_WORDS": "collectors con", "COMP_CWORD": "1"}
    words = subprocess.run([collectors], env=environ, capture_output=True, text=True, timeout=60, check=True)
    assert {"plain,config", "plain,control"} <= set(words.stdout.split())


def test_schema_prints_both_schemas() -> None:
    result = run("schema")
    assert result.exit_code == 0
    printed = json.loads(result.output)
    assert set(printed) == set(SCHEMA_FILES) == {"prediction-event.schema.json", "collectors-config.schema.json"}
    assert printed["collectors-config.schema.json"]["title"] == "CollectorsConfig"


# --- samples and simulate ----------------------------------------------------------------------------


def test_the_shipped_samples_need_no_network() -> None:
    raw = SAMPLE_EVENTS.read_bytes()
    assert raw == shipped_samples()  # regenerated by `python -m streams.tools.samples.generate`
    assert b'"url"' not in raw
    assert len(sample_image(1)) < 2000


def test_simulate_says_what_it_fetches_and_shows_progress(tmp_path: Path) -> None:
    result = run("simulate", "--config", str(EXAMPLE), "--events", str(SAMPLE_EVENTS))
    assert result.exit_code == 0, result.output
    assert "clean-images/0:image_check, clean-images/1:near_duplicate fetch images given by URL" in result.stderr
    assert "simulating: 602/602 (100%)" in result.stderr
    posted = int(result.stdout.splitlines()[1].split()[-1])
    assert posted > 0  # the example over the shipped samples posts, offline
    assert "fetched" not in result.stdout  # every sample image is inline


def test_simulate_offline_reports_url_images_as_not_judged(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    source = {"model_user_id": "clarifai", "model_app_id": "main", "model_id": "general-image-recognition"}
    destination = {"base_url": "http://127.0.0.1:1", "user_id": "u", "app_id": "a", "key": "k" * 16}
    collector = {"id": "checked", "source": source, "destination": destination, "post_queue_workflow_id": "images"}
    check = {"operator": "image_check", "min_width": 224, "timeout_s": 2}
    document = {"collectors": [collector], "workflows": [{"id": "images", "nodes": [check]}]}
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    lines = SAMPLE_EVENTS.read_bytes().splitlines()[:20]
    unreachable = {"id": "x", "data": {"image": {"url": "http://127.0.0.1:1/a.jpg"}}}
    by_url = [
        orjson.dumps({**e, "output": {**e["output"], "input": unreachable}})
        for e in map(orjson.loads, lines[:5])
        if "image" in e["output"]["input"]["data"]
    ]
    events = tmp_path / "e.jsonl"
    events.write_bytes(b"\n".join(lines + by_url) + b"\n")
    online = orjson.loads(run("simulate", "--config", str(config), "--events", str(events), "--json").stdout)
    offline = orjson.loads(
        run("simulate", "--config", str(config), "--events", str(events), "--json", "--offline").stdout
    )
    (kept_online,) = [c["funnel"]["posted"] for c in online["collectors"]]
    (kept_offline,) = [c["funnel"]["posted"] for c in offline["collectors"]]
    assert online["fetched"] == [{"collector": "u/a/checked", "step": "images/0:image_check", "count": len(by_url)}]
    assert online["not_judged"] == [] and offline["fetched"] == []
    assert offline["not_judged"] == [{"collector": "u/a/checked", "step": "images/0:image_check", "count": len(by_url)}]
    assert kept_offline == kept_online + len(by_url)  # let through, counted, not dropped
    table = run("simulate", "--config", str(config), "--events", str(events), "--offline")
    assert f"did not judge {len(by_url)} inputs given by URL (offline)" in table.stdout


# --- tables and progress -----------------------------------------------------------------------------


def test_funnels_fit_100_columns_unless_wide() -> None:
    counts = {"seen": 123456, "queued": 4567, "posted": 4000, "duplicate": 3, "dead_lettered": 2, "dropped": 1}
    counts |= {f"out:workflow-{i}/{i}:max_probability_below": 100 + i for i in range(8)}
    counts |= {f"post_out:images/{i}:image_check": 10 for i in range(3)}
    collectors = {f"some-user/some-app/collector-with-a-long-name-{i}-{'x' * 40}": counts for i in range(3)}
    compact = funnel_table(collectors)
    assert max(map(len, compact.splitlines())) <= WIDTH
    assert "--wide" in compact
    assert "  100 " not in compact and str(sum(100 + i for i in range(8))) in compact
    wide = funnel_table(collectors, wide=True)
    assert max(map(len, wide.splitlines())) > 250
    assert "out workflow-3/3:max_probability_below" in wide


def test_progress_prints_lines_when_not_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with progress(10, "backfilling x", every_s=0.0) as advance:
        for _ in range(10):
            advance(1)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("backfilling x: 1/10 (10%)")
    assert lines[-1].startswith("backfilling x: 10/10 (100%)")


# --- contexts ----------------------------------------------------------------------------------------


def test_contexts_are_kept_owner_only_and_never_hold_a_key(own_contexts: Path, tmp_path: Path) -> None:
    made = run("config", "set-context", "dev", "--api", "http://127.0.0.1:18090", "--key-env", "DEV_KEY",
               "--user", "ann", "--app", "pets", "--broker", "kafka://127.0.0.1:19092", "--app-id", "w1")  # fmt: skip
    assert made.exit_code == 0, made.output
    path = own_contexts / "contexts.yaml"
    assert path == contexts.contexts_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert yaml.safe_load(path.read_text())["contexts"]["dev"] == {
        "api": "http://127.0.0.1:18090", "key_env": "DEV_KEY", "user": "ann", "app": "pets",
        "broker": "kafka://127.0.0.1:19092", "app_id": "w1",
    }  # fmt: skip
    assert run("config", "current-context").output == "dev\n"  # the first context becomes current
    key_file = tmp_path / "key"
    key_file.write_text("file-key-0123456789\n")
    assert run("config", "set-context", "prod", "--key-file", str(key_file), "--api", "http://h:1").exit_code == 0
    assert run("config", "current-context").output == "dev\n"
    assert run("config", "use-context", "prod").exit_code == 0
    listed = run("config", "get-contexts").output.splitlines()
    assert listed[0].split()[:3] == ["CURRENT", "NAME", "API"]
    assert [line.split()[0] for line in listed[1:]] == ["dev", "*"]
    assert run("config", "use-context", "nope").exit_code == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "file-key" not in path.read_text()
    assert run("--context", "dev", "config", "current-context").output == "dev\n"
    assert run("config", "current-context", env={"COLLECTORS_CONTEXT": "dev"}).output == "dev\n"
    assert run("config", "delete-context", "prod").exit_code == 0
    assert run("config", "current-context").exit_code == 1


def test_a_context_key_is_read_from_its_variable_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("file-key-0123456789\n")
    run("config", "set-context", "f", "--key-file", str(key_file), "--use")
    assert contexts.key() == "file-key-0123456789"
    run("config", "set-context", "e", "--key-env", "CTX_KEY", "--use")
    monkeypatch.delenv("CTX_KEY", raising=False)
    unset = run("list")
    assert unset.exit_code == 2 and "CTX_KEY is not set" in unset.output
    monkeypatch.setenv("CTX_KEY", "env-key-0123456789")
    assert contexts.key() == "env-key-0123456789"


def test_the_worker_takes_its_broker_from_the_context_unless_the_environment_names_one() -> None:
    assert run("config", "set-context", "w", "--broker", "kafka://127.0.0.1:1").exit_code == 0
    from_context = run("worker")
    assert from_context.exit_code == 4 and "cannot reach Kafka at 127.0.0.1:1 " in from_context.output
    from_env = run("worker", env={"COLLECTORS_BROKER": "kafka://127.0.0.1:2"})
    assert from_env.exit_code == 4 and "cannot reach Kafka at 127.0.0.1:2 " in from_env.output
    from_flag = run("worker", "--broker", "kafka://127.0.0.1:3", env={"COLLECTORS_BROKER": "kafka://127.0.0.1:2"})
    assert from_flag.exit_code == 4 and "cannot reach Kafka at 127.0.0.1:3 " in from_flag.output


# --- the Kafka jars ----------------------------------------------------------------------------------


def test_every_broker_home_shares_the_users_jar_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLLECTORS_KAFKA_DIST", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    one, two = LocalKafka(home=tmp_path / "one"), LocalKafka(home=tmp_path / "two", port=19300)
    assert one.libs_dir == two.libs_dir == tmp_path / "cache" / "collectors" / "kafka" / "dist" / "3.9.1" / "libs"
    monkeypatch.setenv("COLLECTORS_KAFKA_DIST", str(tmp_path / "shared"))
    assert LocalKafka(home=tmp_path / "one").libs_dir == tmp_path / "shared" / "3.9.1" / "libs"


def test_kafka_status_hint_names_the_home_in_use(tmp_path: Path) -> None:
    result = CliRunner().invoke(kafka, ["status", "--port", "19301", "--home", str(tmp_path / "my home")])
    assert result.exit_code == 1
    assert f"collectors kafka up --port 19301 --home '{tmp_path / 'my home'}'" in result.output
