"""How a worker belongs to its consumer group: its identity (static membership), how soon the group notices
it is gone (session timeout, heartbeats), and the Faust settings that carry them.

Static membership (Kafka's ``group.instance.id``, KIP-345, supported by aiokafka): a worker that restarts with
the same id within the session timeout takes its place back, partitions and all, and the other workers do not
rebalance. A worker without an id joins as a new member each time it starts, and every join or leave
rebalances the group.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

CONTAINER_MARKERS = (Path("/.dockerenv"), Path("/run/.containerenv"))
"""Files container runtimes create (Docker, Podman); Kubernetes is known by its service variables."""


def in_container() -> bool:
    """Whether this process runs in a container (Docker, Podman or a Kubernetes pod)."""
    return "KUBERNETES_SERVICE_HOST" in os.environ or any(marker.exists() for marker in CONTAINER_MARKERS)


def runs_the_container() -> bool:
    """Whether this process is its container's own: process 1, or a child of it (under tini, dumb-init)."""
    return os.getpid() == 1 or os.getppid() == 1


def default_worker_id() -> str | None:
    """The host name when this worker is a container's own process (a pod's name: stable across restarts
    in a StatefulSet), else None. Several workers on one host, or in one container, would share the host
    name, and of two members with one id the coordinator fences the older: they need ids of their own."""
    return socket.gethostname() if in_container() and runs_the_container() else None


def group_settings(*, worker_id: str | None, session_timeout_s: float, heartbeat_interval_s: float) -> dict[str, Any]:
    """The Faust app settings of the worker's group membership.

    With an id, Faust's canonical URL is made of it: Faust's assignor writes the URL into each member's
    assignment and asserts, when a member gets its assignment, that it is its own. A static member that
    restarts gets its previous assignment back (no rebalance), so its URL must not change with it; Faust's
    default (the web host and port) did when the port did, and the worker crashed on the assertion.
    """
    identity = {"canonical_url": f"http://{worker_id}"} if worker_id else {}
    return {
        **identity,
        "consumer_group_instance_id": worker_id,
        "broker_session_timeout": session_timeout_s,
        "broker_heartbeat_interval": heartbeat_interval_s,
    }


CHANGELOG_CONFIG: dict[str, Any] = {
    "segment.bytes": 16 * 1024 * 1024,
    "segment.ms": 10 * 60 * 1000,
}
"""Topic settings of the tables' changelogs (created with them; existing ones keep theirs).

A worker given a partition reads its tables' changelog partition before it processes a record of it (Faust's
table recovery), and a joining worker has nothing of it yet. Kafka compacts only closed segments, and by
default a segment closes at 1 GB or after 7 days: a ledger saved a few times a second grew its changelog by
~0.2 MB a minute at 300 events/s, so a join after a day of traffic would have read hundreds of MB per
partition before posting anything. Closing segments at 16 MB or after 10 minutes lets compaction keep each
partition to one ledger record and the open segment: a few tens of MB at most to read."""
