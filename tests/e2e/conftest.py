"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.tools.localkafka.broker import LocalKafka
from tests.e2e.management_support import ControlApis


@pytest.fixture
def control_apis(kafka: LocalKafka, unique: str, tmp_path: Path) -> Iterator[ControlApis]:
    """Management API processes on the test's control topic, stopped (their logs shown) after the test."""
    apis = ControlApis(kafka, unique, tmp_path)
    yield apis
    apis.stop_all()
