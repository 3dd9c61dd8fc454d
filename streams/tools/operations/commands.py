"""Click commands: ``collectors stats``, ``collectors dlq list|replay`` and ``collectors backfill``."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from streams.core.ledger import Ledger
from streams.tools import contexts
from streams.tools.display import funnel_table
from streams.tools.exits import EXIT_FAILURE
from streams.tools.operations import balance, kafka, stats
from streams.tools.operations.errors import UsageProblem
from streams.tools.progress import progress

if TYPE_CHECKING:
    from streams.tools.operations.posting import Tally

# The dead-letter and backfill commands import what they use (the collectors' workflows, the poster) when
# they run: `collectors stats` starts without loading them.

DEFAULT_BROKER = "kafka://127.0.0.1:9092"
broker_option = click.option(
    "--broker",
    default=contexts.default("broker", DEFAULT_BROKER),
    show_default=f"{DEFAULT_BROKER}, or the context's",
    envvar="COLLECTORS_BROKER",
    help="Kafka bootstrap.",
)
dead_letter_topic_option = click.option(
    "--topic",
    default="collectors-dead-letters",
    show_default=True,
    envvar="COLLECTORS_DEAD_LETTER_TOPIC",
    help="The dead-letter topic.",
)
config_option = click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="COLLECTORS_CONFIG",
    help="The static collectors file the workers run (its keys are read from the environment).",
)
control_topic_option = click.option(
    "--control-topic",
    default="collectors-control",
    show_default=True,
    envvar="COLLECTORS_CONTROL_TOPIC",
    help="Compacted topic of managed collectors.",
)
dry_run_option = click.option("--dry-run", is_flag=True, help="Count what would be posted; post nothing.")
force_option = click.option("--force", is_flag=True, help="Post even for a collector paused by a key error.")


def _ledger_report(ledger: Ledger, delivered_label: str = "posted", *, wide: bool = False) -> str:
    snapshot = ledger.snapshot()
    collectors = snapshot["collectors"]
    table = funnel_table(collectors, delivered_label=delivered_label, wide=wide) if collectors else ""
    return "\n".join(part for part in (table, balance.summary(ledger, balance.check(ledger))) if part)


@click.command("stats")
@broker_option
@click.option(
    "--app-id",
    default=contexts.default("app_id", "collectors"),
    show_default="collectors, or the context's",
    envvar="COLLECTORS_APP_ID",
    help="Workers' app id.",
)
@click.option("--worker", "workers", multiple=True, help="A worker's URL (repeat for each); default: read Kafka.")
@click.option("--wide", is_flag=True, help="A column per workflow step (the default fits 100 columns).")
@click.option("--watch", is_flag=True, help="Show it again every --interval seconds, until Ctrl-C.")
@click.option(
    "--interval",
    "interval_s",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds between two --watch readings.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def stats_command(
    broker: str, app_id: str, workers: tuple[str, ...], wide: bool, watch: bool, interval_s: float, as_json: bool
) -> None:
    """Each collector's funnel and whether the ledger balances.

    By default the ledger tables' changelog topics are read from Kafka (every partition's last ledger,
    whether or not workers run); with --worker, the workers' /collectors/stats/ endpoints are summed.
    Exit code 1 when no worker of --app-id ever wrote a ledger there.
    """
    if not watch:
        _show_stats(broker, app_id, workers, wide, as_json)
        return
    try:
        while True:
            if sys.stdout.isatty():
                click.clear()
            _show_stats(broker, app_id, workers, wide, as_json)
            time.sleep(interval_s)
            if not sys.stdout.isatty():
                click.echo("")
    except KeyboardInterrupt:
        return


def _show_stats(broker: str, app_id: str, workers: tuple[str, ...], wide: bool, as_json: bool) -> None:
    missing: list[str] = []
    if workers:
        ledger = stats.from_workers(workers)
    else:
        ledger, missing = asyncio.run(stats.from_changelogs(broker, app_id))
    if as_json:
        document: dict[str, Any] = {
            **ledger.snapshot(),
            **balance.check(ledger).to_json(),
            "source": list(workers) or [stats.changelog_topic(app_id, t) for t in stats.LEDGER_TABLES],
            "missing_topics": missing,
        }
        click.echo(orjson.dumps(document).decode())
    if len(missing) == len(stats.LEDGER_TABLES):
        click.echo(
            f"no ledger for app id {app_id!r} at {broker}: no worker with this app id has run there "
            f"({', '.join(missing)} missing); check --app-id (COLLECTORS_APP_ID, or the context's app-id)",
            err=True,
        )
        raise SystemExit(EXIT_FAILURE)
    if as_json:
        return
    if missing:
        click.echo(f"no ledger yet: {', '.join(missing)} missing (has a worker with app id {app_id} run?)", err=True)
    click.echo(_ledger_report(ledger, wide=wide))


@click.group("dlq")
def dlq() -> None:
    """The dead-letter topic: list what is there, replay what can be posted again."""


@dlq.command("list")
@broker_option
@dead_letter_topic_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def dlq_list(broker: str, topic: str, as_json: bool) -> None:
    """Dead letters by collector, reason and replayability, with counts and the oldest and newest."""
    from streams.tools.operations import letters

    found = letters.group(asyncio.run(letters.read_letters(broker, topic)))
    if as_json:
        document = {"topic": topic, "total": sum(g.count for g in found), "groups": [g.to_json() for g in found]}
        click.echo(orjson.dumps(document).decode())
    elif found:
        click.echo(letters.table(found))
        click.echo(f"{sum(g.count for g in found)} dead letters in {topic}")
    else:
        click.echo(f"no dead letters in {topic}")


@dlq.command("replay")
@click.option("--collector", "collector_id", help="user/app/id, or the id alone when unambiguous; default: all.")
@broker_option
@dead_letter_topic_option
@config_option
@control_topic_option
@dry_run_option
@force_option
def dlq_replay(
    collector_id: str | None,
    broker: str,
    topic: str,
    config: Path | None,
    control_topic: str,
    dry_run: bool,
    force: bool,
) -> None:
    """Post replayable dead letters again, with each collector's current key.

    Idempotent: the inputs keep their ids, so an input already posted is answered as a duplicate. The
    letters stay in the topic; run this again to retry what failed.
    """
    asyncio.run(_replay(collector_id, broker, topic, config, control_topic, dry_run, force))


async def _replay(
    collector_id: str | None,
    broker: str,
    topic: str,
    config: Path | None,
    control_topic: str,
    dry_run: bool,
    force: bool,
) -> None:
    from streams.tools.operations import letters
    from streams.tools.operations.targets import find, load_collectors, refuse_if_paused_by_error

    index, errors = await load_collectors(broker, control_topic, config)
    found = await letters.read_letters(broker, topic)
    if collector_id is not None:
        wanted = [find(index, errors, collector_id).id]
    else:
        wanted = sorted({str(g.collector_id) for g in letters.group(found) if g.replayable})
    collectors = [find(index, errors, cid) for cid in wanted]
    for collector in collectors:
        refuse_if_paused_by_error(collector, force)
    work = [(c, letters.replayable_inputs(found, c.id)) for c in collectors]
    total = sum(len(inputs) for _, inputs in work)
    if not total:
        click.echo(f"nothing to replay in {topic}")
        return
    if dry_run:
        for collector, inputs in work:
            click.echo(f"{collector.id}: {len(inputs)} inputs to replay")
        return
    tallies: list[tuple[str, Tally]] = []
    with progress(total, "replaying") as advance:
        for collector, inputs in work:
            tallies.append((collector.id, await letters.replay(collector, inputs, advance)))
    for cid, tally in tallies:
        click.echo(f"{cid}: {tally}")
    failed = sum(t.failed for _, t in tallies)
    if failed:
        click.echo(f"{failed} inputs failed; their letters stay in {topic}: fix the cause and replay again", err=True)


@click.command("backfill")
@click.option("--collector", "collector_id", required=True, help="user/app/id, or the id alone when unambiguous.")
@click.option("--from", "since", required=True, help="Records at or after this time (ISO 8601 or epoch ms).")
@click.option("--to", "until", help="Records before this time (default: the end of the topic now).")
@broker_option
@click.option(
    "--topic",
    default="predictions",
    show_default=True,
    envvar="COLLECTORS_PREDICTIONS_TOPIC",
    help="Predictions topic.",
)
@config_option
@control_topic_option
@dry_run_option
@force_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def backfill_command(
    collector_id: str,
    since: str,
    until: str | None,
    broker: str,
    topic: str,
    config: Path | None,
    control_topic: str,
    dry_run: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Run one collector over past predictions still in the topic and post what it keeps.

    Times are the records' Kafka timestamps. Idempotent: the input ids are the ones the worker posts, so
    inputs already there are answered as duplicates.
    """
    from streams.tools.operations.backfill import parse_timestamp

    since_ms = parse_timestamp(since)
    until_ms = None if until is None else parse_timestamp(until)
    if until_ms is not None and until_ms <= since_ms:
        raise UsageProblem("--to must be after --from")
    ledger, cid = asyncio.run(
        _backfill(collector_id, since_ms, until_ms, broker, topic, config, control_topic, dry_run, force)
    )
    if as_json:
        document = {"collector_id": cid, "dry_run": dry_run, **ledger.snapshot(), **balance.check(ledger).to_json()}
        click.echo(orjson.dumps(document).decode())
        return
    click.echo(_ledger_report(ledger, delivered_label="would post" if dry_run else "posted"))
    failed = ledger.collectors[cid][balance.FAILED]
    if failed:
        click.echo(f"{failed} inputs refused by the destination; a new backfill retries them", err=True)


async def _backfill(
    collector_id: str,
    since_ms: int,
    until_ms: int | None,
    broker: str,
    topic: str,
    config: Path | None,
    control_topic: str,
    dry_run: bool,
    force: bool,
) -> tuple[Ledger, str]:
    from streams.tools.operations.backfill import as_active, backfill, window
    from streams.tools.operations.targets import find, load_collectors, refuse_if_paused_by_error

    index, errors = await load_collectors(broker, control_topic, config)
    collector = find(index, errors, collector_id)
    refuse_if_paused_by_error(collector, force)
    async with kafka.consumer(broker) as client:
        start, end = await window(broker, client, topic, since_ms, until_ms)
        total = sum(end[tp] - start[tp] for tp in start if end[tp] > start[tp])
        with progress(total, f"backfilling {collector.id}") as advance:
            ledger = await backfill(client, start, end, as_active(collector), dry_run=dry_run, progress=advance)
    return ledger, collector.id


@click.command("tail")
@click.argument("topic", default="predictions")
@broker_option
@click.option("--from-beginning", is_flag=True, help="Start at the oldest record, not at the end.")
@click.option("-n", "--limit", type=int, help="Stop after this many records.")
@click.option("--idle-exit", "idle_exit_s", type=float, help="Stop after this many seconds without a record.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per record.")
def tail_command(
    topic: str, broker: str, from_beginning: bool, limit: int | None, idle_exit_s: float | None, as_json: bool
) -> None:
    """Show the records of a topic as they arrive, decoded (predictions, queue, dead letters, control)."""
    from streams.tools.operations.tail import tail

    try:
        asyncio.run(
            tail(
                broker,
                topic,
                from_beginning=from_beginning,
                limit=limit,
                idle_exit_s=idle_exit_s,
                echo=click.echo,
                as_json=as_json,
            )
        )
    except LookupError as exc:
        raise click.UsageError(str(exc)) from None
    except KeyboardInterrupt:
        pass
