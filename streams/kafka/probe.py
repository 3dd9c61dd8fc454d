"""Whether Kafka answers: the part of a readiness probe that a process's own state cannot tell."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError

from streams.kafka.producing import bootstrap_address

log = logging.getLogger(__name__)


class BrokerProbe:
    """Asks the broker for its metadata with a fresh connection, at most once per ``every_s`` (probes of
    several callers share the answer); a broker that does not answer within ``timeout_s`` is down."""

    def __init__(self, broker: str, *, timeout_s: float = 2.0, every_s: float = 1.0) -> None:
        self.bootstrap = bootstrap_address(broker)
        self.timeout_s = timeout_s
        self.every_s = every_s
        self._answered: bool | None = None
        self._asked_at = 0.0
        self._lock = asyncio.Lock()

    async def answers(self) -> bool:
        """True when the broker answered a metadata request (now, or less than ``every_s`` ago)."""
        async with self._lock:
            if self._answered is None or time.monotonic() - self._asked_at >= self.every_s:
                answered = await self._ask()
                if answered != self._answered and self._answered is not None:
                    log.log(
                        logging.INFO if answered else logging.WARNING,
                        "Kafka at %s %s",
                        self.bootstrap,
                        "answers again" if answered else "does not answer",
                    )
                self._answered, self._asked_at = answered, time.monotonic()
            return self._answered

    async def _ask(self) -> bool:
        client = AIOKafkaClient(bootstrap_servers=self.bootstrap, request_timeout_ms=int(self.timeout_s * 1000))
        try:
            async with asyncio.timeout(self.timeout_s):
                await client.bootstrap()
            return True
        except (KafkaError, TimeoutError, OSError):
            return False
        finally:
            await client.close()
