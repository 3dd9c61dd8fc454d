"""A real local Apache Kafka broker (KRaft, single node) for development and tests, without Docker."""

from .broker import KafkaStatus, LocalKafka
from .fetch import LocalKafkaError

__all__ = ["KafkaStatus", "LocalKafka", "LocalKafkaError"]
