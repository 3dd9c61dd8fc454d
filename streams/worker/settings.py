"""Worker settings: keyword-only, explicit defaults, read from ``COLLECTORS_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.inputs_api import MAX_INPUTS_PER_REQUEST
from streams.worker.membership import default_worker_id


class WorkerSettings(BaseSettings):
    """Everything a worker needs; each field is also ``COLLECTORS_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="COLLECTORS_", extra="forbid")

    app_id: str = Field(default="collectors", description="Faust app id: the consumer group of all workers.")
    broker: str = Field(default="kafka://127.0.0.1:9092", description="Kafka bootstrap, as kafka://host:port.")
    config: Path | None = Field(
        default=None, description="A static collectors file (YAML or JSON), besides the managed collectors."
    )
    predictions_topic: str = "predictions"
    queue_topic: str = "collectors-queue"
    dead_letter_topic: str = "collectors-dead-letters"
    control_topic: str = Field(default="collectors-control", description="Compacted topic of managed collectors.")
    partitions: int = Field(default=4, ge=1, description="Partitions of the topics the worker creates.")
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    data_dir: Path = Path(".collectors/worker")
    stream_buffer_maxsize: int = Field(
        default=20_000,
        ge=1,
        description="Records Faust buffers per agent (Faust's default 4096 throttled a poll's worth of records).",
    )
    fetch_max_wait_ms: int = Field(
        default=50,
        ge=0,
        description="How long a fetch request waits for data on the broker (Faust's 1,500 held back every other"
        " partition's records while one request waited on partitions with nothing new).",
    )
    select_batch_size: int = Field(default=2000, ge=1)
    select_batch_within_s: float = Field(default=0.05, gt=0)
    post_batch_size: int = Field(
        default=MAX_INPUTS_PER_REQUEST, ge=1, le=MAX_INPUTS_PER_REQUEST, description="Inputs per request, at most."
    )
    post_read_size: int = Field(default=1024, ge=1, description="Queue records the posting agent reads at once.")
    post_batch_within_s: float = Field(
        default=0.2, gt=0, description="How long a destination's held inputs wait to fill a batch, at most."
    )
    post_max_held: int = Field(
        default=8192, ge=1, description="Queue records held for fuller batches; beyond, the queue is not fetched."
    )
    post_concurrency: int = Field(default=4, ge=1, description="Requests in flight per worker, at most.")
    max_event_bytes: int = Field(default=1_048_576, ge=1024)
    max_event_depth: int = Field(default=32, ge=4)
    http_timeout_s: float = Field(default=10.0, gt=0)
    retry_max_backoff_s: float = Field(default=30.0, gt=0)
    gc_young_threshold: int = Field(
        default=50_000,
        ge=0,
        description="Objects allocated (net) between young-generation garbage collections; Python's default is"
        " 700, 0 keeps it. Once the worker is ready, what it loaded is also frozen out of full collections.",
    )
    stream_processing_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="Faust logs a partition as stuck when it has records not yet fetched and none of its events"
        " was taken for this long.",
    )
    log_level: str = Field(
        default="info", description="info: what a person needs (start, partitions, collector changes, failures)."
    )
    log_format: str = Field(default="text", pattern="^(text|json)$", description="json: one JSON object per line.")
    worker_id: str | None = Field(
        default_factory=default_worker_id,
        min_length=1,
        description="A name stable across this worker's restarts, unique in the group (Kafka's group.instance.id:"
        " static membership, KIP-345). A worker restarted with its id within the session timeout gets its"
        " partitions back with no rebalance of the others. Default: the host name inside a container, else none.",
    )
    session_timeout_s: float = Field(
        default=6.0,
        ge=1,
        description="A worker that sends no heartbeat this long is taken out of the group and its partitions"
        " given to the others (Kafka's session.timeout.ms; brokers accept 6-1,800 s by default).",
    )
    heartbeat_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="How often the worker tells the group it is alive (below a third of the session timeout).",
    )
    leave_group_on_stop: bool = Field(
        default=True,
        description="On SIGTERM, leave the group at once so the partitions move now; false keeps a worker id's"
        " membership for a restart (its partitions then wait for it up to the session timeout).",
    )
    loop_stall_warn_s: float = Field(
        default=1.0,
        ge=0,
        description="Log an event-loop stall longer than this, with its stack; 0: do not watch. A busy healthy"
        " worker stalls 100-250 ms (a batch selected in one go, the CPU shared): 1 s, a sixth of the session"
        " timeout, is worth a warning.",
    )

    @model_validator(mode="after")
    def _heartbeats_fit_the_session(self) -> WorkerSettings:
        if self.heartbeat_interval_s * 3 > self.session_timeout_s:
            raise ValueError(
                f"heartbeat_interval_s ({self.heartbeat_interval_s:g}) must be at most a third of session_timeout_s"
                f" ({self.session_timeout_s:g}): one late heartbeat must not end the session"
            )
        return self
