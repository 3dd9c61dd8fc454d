"""Find the collector an operation acts on, as the worker would run it now: its current key and steps."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aiokafka.errors import KafkaConnectionError

from streams.core.allowlist import AllowedDestinations, AllowListError
from streams.core.config import ConfigError, load_index
from streams.core.registry import compile_stored
from streams.core.routing import CollectorIndex, CompiledCollector
from streams.core.secrets import SecretError, install_redaction, load_box
from streams.core.workflows import WorkflowError
from streams.kafka.control_topic import ControlReader
from streams.tools.operations.errors import Refused, UsageProblem
from streams.tools.operations.kafka import unreachable_kafka

CONTROL_READ_TIMEOUT_S = 30.0


async def load_collectors(
    broker: str, control_topic: str, config: Path | None
) -> tuple[CollectorIndex, dict[str, str]]:
    """The collectors of a static file (optional) and of the control topic, combined as a worker combines
    them (a stored collector wins over a file's with the same qualified id); and the stored ones that
    cannot run, with why. Keys are opened with the deployment's secrets and destinations checked against
    ``COLLECTORS_ALLOWED_DESTINATIONS``, as a worker does."""
    install_redaction()
    try:
        box = load_box()
        allowed_list = os.environ.get("COLLECTORS_ALLOWED_DESTINATIONS", "")
        option = "COLLECTORS_ALLOWED_DESTINATIONS"
        allowed = AllowedDestinations.parse(allowed_list, option=option) if allowed_list.strip() else None
    except (SecretError, AllowListError) as exc:
        raise UsageProblem(str(exc)) from None
    static: list[CompiledCollector] = []
    if config is not None:
        try:
            static = list(load_index(config))
        except (ConfigError, WorkflowError) as exc:
            raise UsageProblem(str(exc)) from None
    reader = ControlReader(broker, control_topic)
    try:
        await reader.start()
        await asyncio.wait_for(reader.ready.wait(), CONTROL_READ_TIMEOUT_S)
    except (ConnectionError, KafkaConnectionError, TimeoutError) as exc:
        raise unreachable_kafka(broker, exc) from None
    finally:
        await reader.stop()
    stored, errors = compile_stored(reader.state, box, allowed)
    return CollectorIndex([*static, *stored]), errors


def find(index: CollectorIndex, errors: dict[str, str], wanted: str) -> CompiledCollector:
    """The collector named by its qualified id ``user/app/id``, or by its id alone when only one has it."""
    if wanted in errors:
        raise UsageProblem(f"collector {wanted} {errors[wanted]}; fix it through the management API first")
    exact = index.get(wanted)
    if exact is not None:
        return exact
    matches: list[CompiledCollector] = [c for c in index if c.spec.id == wanted]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageProblem(
            f"{wanted!r} names {len(matches)} collectors; give one of {', '.join(c.id for c in matches)}"
        )
    known = sorted(c.id for c in index)
    listing = ", ".join(known) if known else "none (give --config FILE, or check --control-topic and --broker)"
    broken = "".join(f"; {key} {message}" for key, message in sorted(errors.items()))
    raise UsageProblem(f"no collector {wanted!r}; known collectors: {listing}{broken}")


def refuse_if_paused_by_error(collector: CompiledCollector, force: bool) -> None:
    """Posting for a collector whose key the destination refused would only fail again."""
    if collector.paused_by_error and not force:
        raise Refused(
            f"collector {collector.id} is paused: {collector.last_error}. Fix its key and resume it "
            "(PATCH it with a valid key and status active through the management API), then run this again; "
            "--force skips this check"
        )
