"""The worker's group settings: its id defaults to the host name in a container only, and heartbeats must fit
the session timeout."""

from __future__ import annotations

import socket

import pytest
from pydantic import ValidationError

from streams.worker import membership
from streams.worker.settings import WorkerSettings


def test_worker_id_is_the_host_name_of_a_kubernetes_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setattr(membership, "runs_the_container", lambda: True)
    assert WorkerSettings().worker_id == socket.gethostname()


def test_no_default_worker_id_for_one_of_several_processes_of_a_container(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test runs under pytest, not as a container's own process: workers started so share a host."""
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert not membership.runs_the_container()
    assert WorkerSettings().worker_id is None


def test_no_worker_id_outside_a_container(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(membership, "CONTAINER_MARKERS", (tmp_path / "absent",))
    assert WorkerSettings().worker_id is None
    assert WorkerSettings(worker_id="w-7").worker_id == "w-7"


def test_heartbeats_must_fit_three_times_in_the_session() -> None:
    with pytest.raises(ValidationError, match="at most a third of session_timeout_s"):
        WorkerSettings(session_timeout_s=6, heartbeat_interval_s=2.5)
    settings = WorkerSettings(session_timeout_s=6, heartbeat_interval_s=2)
    assert membership.group_settings(
        worker_id="w-1", session_timeout_s=settings.session_timeout_s, heartbeat_interval_s=2
    ) == {
        "canonical_url": "http://w-1",
        "consumer_group_instance_id": "w-1",
        "broker_session_timeout": 6,
        "broker_heartbeat_interval": 2,
    }
