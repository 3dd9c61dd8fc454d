"""aiokafka's reports of a group coordinator not found yet are dropped only during a worker's start."""

from __future__ import annotations

import logging

from streams.worker.faust_tuning import StartupNoise


def _record(message: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("aiokafka.consumer.group_coordinator", level, __file__, 1, message, args, None)


LOOKUP_FAILED = _record("Group Coordinator Request failed: %s", "[Error 15] GroupCoordinatorNotAvailableError")
DEAD = _record("Marking the coordinator dead (node %s)for group %s.", 1, "collectors", level=logging.WARNING)


def test_coordinator_not_found_yet_is_dropped_while_starting() -> None:
    noise = StartupNoise(grace_s=60)
    assert not noise.filter(LOOKUP_FAILED)
    assert not noise.filter(DEAD)
    assert noise.filter(_record("Group Coordinator Request failed: %s", "GroupAuthorizationFailedError"))
    assert noise.filter(_record("Heartbeat failed: %r", "RequestTimedOutError"))


def test_coordinator_lost_after_the_start_is_logged() -> None:
    noise = StartupNoise(grace_s=0)
    assert noise.filter(LOOKUP_FAILED)
    assert noise.filter(DEAD)
