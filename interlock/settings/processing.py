"""The processors' worker, the retry tiers and the dead-letter tooling."""

from __future__ import annotations

from pydantic import BaseModel, Field

from interlock.collector import YOUNG_THRESHOLD

__all__ = [
    "DlqSettings",
    "ProcessorSettings",
    "RetrySettings",
]


class ProcessorSettings(BaseModel):
    """The Faust worker: identity, state store and group timings."""

    app_id: str = Field(
        default="interlock-processors",
        description="Faust app id: consumer group, internal topic prefix.",
    )
    store: str = Field(
        default="rocksdb://",
        description="Faust table store: `rocksdb://` (on disk) or `memory://` (rebuilt at start).",
    )
    web_port: int = Field(default=6066, ge=0, le=65535)
    session_timeout_s: float = 10.0
    heartbeat_interval_s: float = 1.0
    data_dir: str = Field(
        default=".interlock/faust", description="Where the worker keeps its tables."
    )
    rocksdb_write_buffer_mb: int = Field(
        default=1,
        ge=1,
        description="With the rocksdb:// store: memtable size of each table partition's database"
        " (RocksDB write_buffer_size); past it the table is flushed to disk.",
    )
    rocksdb_write_buffers: int = Field(
        default=2, ge=1, description="Memtables each database may hold (max_write_buffer_number)."
    )
    rocksdb_block_cache_mb: int = Field(
        default=1,
        ge=1,
        description="With the rocksdb:// store: block cache of each table partition's database, for"
        " reads from disk.",
    )
    rocksdb_cache_entries: int = Field(
        default=0,
        ge=0,
        description="With the rocksdb:// store: decoded values each table partition keeps in memory"
        " for reads (written through, dropped on rebalance and recovery; 0: none, every read goes"
        " to the database). Off by default: the benchmark measured no CPU saved and far more"
        " resident memory with it on.",
    )
    topic_prefix: str = Field(
        default="", description="Prefix of every topic the processors read and write."
    )
    join_grace_s: float = Field(
        default=300.0, gt=0, description="How long a quote waits for its account."
    )
    dedup_ttl_s: float = Field(
        default=7 * 24 * 3600.0, gt=0, description="How long event ids are remembered."
    )
    tick_interval_s: float = Field(default=1.0, gt=0, description="Period of the parked scan.")
    linger_ms: int = Field(
        default=40,
        ge=0,
        description=(
            "How long the worker's producer gathers its records (commands, audit records,"
            " changelogs, dead letters) into a batch (librdkafka linger.ms). Each record that"
            " finds its partition's batch empty wakes the producer's thread: a longer linger"
            " wakes it less often and sends fewer, larger requests, at the cost of up to this"
            " much more latency per command. The flush before each commit sends everything."
        ),
    )
    commit_interval_s: float = Field(
        default=1.0,
        gt=0,
        description=(
            "How often the worker commits the offsets it has handled (Faust's"
            " broker_commit_interval). Its outputs, changelog records and dead letters are made"
            " durable just before each commit; a worker that dies replays at most this much."
        ),
    )
    dedup_sweep_interval_s: float = Field(
        default=60.0, gt=0, description="How often expired ids and deal states are forgotten."
    )
    match_threshold: float = Field(
        default=0.85, ge=0, le=1, description="Below this an account match goes to review."
    )
    ownership_path: str | None = Field(default=None, description="Ownership YAML file.")
    policy_path: str | None = Field(
        default=None,
        description="Commercial policy YAML file (limits, case routing, severities, SLAs); the "
        "shipped `contracts/policy.yaml` when unset.",
    )
    review_cases: bool = Field(
        default=True,
        description="Open exception-desk cases (review.cases) and hold quotes over the "
        "commercial policy for approval; off: no cases, no policy gate.",
    )
    origin: str = Field(default="interlock", description="Origin marker on our own writes.")
    batch_size: int = Field(default=500, ge=1, description="Events handled per agent batch.")
    check_products: bool = Field(
        default=False, description="Check quote lines against the canonical product catalog."
    )
    batch_wait_s: float = Field(default=0.01, gt=0, description="Longest wait to fill a batch.")
    shutdown_timeout_s: float = Field(
        default=15.0,
        gt=0,
        description="Longest wait for the worker to stop cleanly (e.g. with the broker gone) "
        "before it exits anyway.",
    )
    stall_timeout_s: float = Field(
        default=300.0,
        ge=0,
        description="A stream partition the worker holds that stays behind (records waiting, or "
        "paused) at the same position and committed offset this long, outside a rebalance, makes "
        "the worker exit with status 4 for its supervisor to restart it (0: never).",
    )
    gc_young_threshold: int = Field(
        default=YOUNG_THRESHOLD,
        ge=0,
        description="Allocations between young-generation collections of the worker's garbage "
        "collector; the start-up heap is frozen too (0: Python's defaults, nothing frozen).",
    )
    reconcile_order_sla_s: float = Field(
        default=600.0,
        gt=0,
        description="Reconciliation: how long after its order is requested a quote may have no "
        "ERP order (and an ERP order no quote) before it is a finding.",
    )
    reconcile_writeback_sla_s: float = Field(
        default=600.0,
        gt=0,
        description="Reconciliation: how long an ERP cancellation, credit hold, shipment or "
        "invoice may go without a write-back to the deal before it is a finding.",
    )
    reconcile_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="Reconciliation: how often each partition's parity ledger entries that are "
        "due (an SLA passed, or old enough to forget) are compared again.",
    )


class RetrySettings(BaseModel):
    """Retry tiers of transient failures: tier n waits ``delays[n-1]`` seconds (retry.<t>.<n>)."""

    delays: list[float] = Field(
        default_factory=lambda: [1.0, 10.0, 60.0],
        description="Seconds before retry tier 1, 2, 3, ... (retry.<topic>.<n>).",
    )


class DlqSettings(BaseModel):
    """Dead-letter tooling: where replays and purges are recorded, default replay pacing."""

    audit_topic: str = Field(
        default="audit.replays", description="Where every replayed dead letter is recorded."
    )
    purge_topic: str = Field(
        default="audit.dlq-purges", description="Where purged dead letters are marked (compacted)."
    )
    replay_rate: float | None = Field(default=None, gt=0, description="messages/s; None: unpaced")
