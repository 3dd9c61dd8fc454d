"""What a running worker holds besides Faust: collectors, ledger, poster, and each collector's last error."""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.delivery.poster import Poster
from streams.ledger import Ledger
from streams.routing import CollectorIndex
from streams.settings import WorkerSettings


@dataclass(slots=True)
class Runtime:
    settings: WorkerSettings
    index: CollectorIndex
    poster: Poster
    ledger: Ledger = field(default_factory=Ledger)
    last_errors: dict[str, str] = field(default_factory=dict)
