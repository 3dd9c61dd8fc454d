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

    app_id: str = Field(
        default="collectors",
        description="The workers' group: workers with the same id share the partitions and the collectors.",
    )
    broker: str = Field(default="kafka://127.0.0.1:9092", description="Kafka bootstrap, as kafka://host:port.")
    config: Path | None = Field(
        default=None, description="A static collectors file (YAML or JSON), besides the managed collectors."
    )
    predictions_topic: str = Field(default="predictions", description="The topic model servers publish predictions to.")
    queue_topic: str = Field(
        default="collectors-queue",
        description="The topic of selected records waiting to be posted (keyed by collector).",
    )
    dead_letter_topic: str = Field(
        default="collectors-dead-letters",
        description="Where malformed events and inputs a destination refused go, with the reason.",
    )
    control_topic: str = Field(default="collectors-control", description="Compacted topic of managed collectors.")
    partitions: int = Field(default=4, ge=1, description="Partitions of the topics the worker creates.")
    web_host: str = Field(
        default="127.0.0.1",
        description="Address the web server (stats, health, metrics) binds: loopback lets only this host read"
        " them; 0.0.0.0 exposes them to the network.",
    )
    web_port: int = Field(default=6066, description="Port of those endpoints; each worker on one host needs its own.")
    allowed_destinations: str = Field(
        default="",
        description="Comma-separated base URLs the control topic's collectors may post to; a collector naming"
        " another is paused with its reason. Empty: any (set it in production, as the management API's list).",
    )
    data_dir: Path = Field(default=Path(".collectors/worker"), description="The worker's local state (Faust's tables).")
    stream_buffer_maxsize: int = Field(
        default=20_000,
        ge=1,
        description="Records buffered per agent between Kafka and the agent; lower it to save memory on a small"
        " machine, at some throughput.",
    )
    fetch_max_wait_ms: int = Field(
        default=50,
        ge=0,
        description="How long a fetch request waits on the broker for new data. One fetch is in flight per broker,"
        " so this is how long a partition with data may wait behind partitions without; raise it only to make"
        " fewer idle fetches on a quiet topic.",
    )
    select_batch_size: int = Field(
        default=2000,
        ge=1,
        description="Predictions the selecting agent handles at once before saving its ledgers; larger saves a little"
        " CPU under a steady backlog and redoes more work after a crash.",
    )
    select_batch_within_s: float = Field(
        default=0.05, gt=0, description="How long the selecting agent waits to fill a batch, at most."
    )
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
    max_event_bytes: int = Field(
        default=1_048_576, ge=1024, description="Larger events are dead-lettered without being decoded."
    )
    max_event_depth: int = Field(
        default=32, ge=4, description="Events whose input data nests deeper than this are dead-lettered."
    )
    http_timeout_s: float = Field(default=10.0, gt=0, description="Each request to a destination times out after this.")
    retry_max_backoff_s: float = Field(
        default=30.0, gt=0, description="The longest wait between retries of a failed request; shorter recovers faster."
    )
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
