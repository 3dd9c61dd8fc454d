"""``collectors backfill``: exactly the inputs ``simulate`` predicts for the events from a time on; twice,
the second run finds them all there (duplicates)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import orjson
import pytest

from streams.core.ids import input_id
from streams.core.simulate import offline_index, simulate
from streams.tools.localkafka.broker import LocalKafka
from streams.tools.operations.commands import backfill_command
from streams.tools.operations.errors import EXIT_USAGE
from streams.tools.samples.generate import events

from .support import config, invoke, invoke_json

pytestmark = pytest.mark.kafka

QUARTER = "ann/pets/quarter"


async def test_backfill_from_a_time_posts_exactly_the_later_events_once(
    tmp_path, kafka: LocalKafka, topic_factory, producer_factory, destination_factory, unique
) -> None:
    destination = destination_factory()
    env = {"TEST_PETS_KEY": destination.add_app("ann", "pets")}
    collectors = config(tmp_path / "collectors.yaml", destination.url)
    predictions = await topic_factory("predictions")
    generated = [orjson.dumps(e) for e in events(600, seed=21)]
    before, after = generated[:250], [*generated[250:], b"not an event"]
    await producer_factory(predictions, before)
    await asyncio.sleep(0.05)
    since_ms = int(time.time() * 1000)
    await asyncio.sleep(0.05)
    await producer_factory(predictions, after)
    since = datetime.fromtimestamp(since_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    async def expected(lines: list[bytes]) -> set[str]:
        report = await simulate(offline_index(collectors), lines)
        return {input_id(QUARTER, eid) for eid in report.selected[QUARTER]}

    args = ["--collector", "quarter", "--broker", kafka.bootstrap_servers, "--topic", predictions]
    args += ["--config", str(collectors), "--control-topic", f"{unique}-control"]
    first = await invoke_json(backfill_command, [*args, "--from", since], env)
    later = await expected(after)
    assert first["collector_id"] == QUARTER
    counts = first["events"]
    assert (counts["events"], counts["decoded"], counts["dead_lettered"]) == (len(after), len(after) - 1, 1)
    assert first["collectors"][QUARTER]["posted"] == len(later) > 0
    assert (first["balanced"], first["pending"]) == (True, 0)
    assert set(destination.input_ids("ann", "pets")) == later

    second = await invoke_json(backfill_command, [*args, "--from", since], env)
    assert (second["collectors"][QUARTER]["posted"], second["collectors"][QUARTER]["duplicate"]) == (0, len(later))
    assert sorted(destination.input_ids("ann", "pets")) == sorted(later)

    dry = await invoke_json(backfill_command, [*args, "--from", "0", "--to", str(since_ms), "--dry-run"], env)
    assert dry["events"]["events"] == len(before)
    assert dry["collectors"][QUARTER]["posted"] == len(await expected(before))
    assert sorted(destination.input_ids("ann", "pets")) == sorted(later), "a dry run posts nothing"

    table = await invoke(backfill_command, [*args, "--from", since], env)
    assert table.exit_code == 0, table.output
    assert QUARTER in table.stdout and "ledger balances: yes" in table.stdout
    assert f"backfilling {QUARTER}: {len(after)}/{len(after)} (100%)" in table.stderr  # lines, not on a terminal


async def test_backfill_usage_errors(kafka: LocalKafka, topic_factory, unique) -> None:
    predictions = await topic_factory("predictions")
    args = ["--broker", kafka.bootstrap_servers, "--topic", predictions, "--control-topic", f"{unique}-control"]
    unknown = await invoke(backfill_command, [*args, "--collector", "nope", "--from", "2026-01-01T00:00:00Z"])
    assert unknown.exit_code == EXIT_USAGE, unknown.output
    assert "no collector 'nope'" in unknown.output
    bad_time = await invoke(backfill_command, [*args, "--collector", "nope", "--from", "yesterday"])
    assert bad_time.exit_code == EXIT_USAGE, bad_time.output
    assert "is not a time" in bad_time.output
