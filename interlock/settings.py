"""The one Settings object: loaded once at the composition root and passed down.

Environment variables use the prefix ``INTERLOCK_`` and ``__`` for nesting, e.g.
``INTERLOCK_KAFKA__BOOTSTRAP_SERVERS``. The conventional ``KAFKA_BOOTSTRAP_SERVERS`` is honoured
too. With no bootstrap servers configured, the embedded broker is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "BrokerSettings",
    "CdcSettings",
    "ConsoleSettings",
    "ConsoleUserSettings",
    "DlqSettings",
    "HubSpotWebhookSettings",
    "KafkaSettings",
    "LagExporterSettings",
    "MetricsSettings",
    "ProcessorSettings",
    "RetrySettings",
    "SchemaRegistrySettings",
    "Settings",
    "SinkSettings",
    "SinkTargetSettings",
    "StandardWebhookSettings",
    "TopicDefaults",
    "WebhookSettings",
    "load_settings",
]

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"]


class KafkaSettings(BaseModel):
    """Where the brokers are and how to talk to them (mapped to librdkafka names)."""

    bootstrap_servers: str | None = Field(
        default=None, description="host:port,...; unset: the embedded broker is started."
    )
    security_protocol: SecurityProtocol | None = Field(
        default=None, description="librdkafka security.protocol."
    )
    sasl_mechanism: SaslMechanism | None = Field(
        default=None, description="SASL mechanism (librdkafka sasl.mechanism)."
    )
    sasl_username: str | None = None
    sasl_password: SecretStr | None = Field(
        default=None, description="SASL password (never logged)."
    )
    ssl_ca_location: str | None = Field(
        default=None, description="CA file that verifies the brokers' certificates."
    )
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None
    client_id: str = Field(
        default="interlock",
        description="`interlock up` gives each service its own (interlock-worker, ...).",
    )
    broker_kind: Literal["kafka", "tansu"] = Field(
        default="kafka",
        description=(
            "The broker's software: `tansu` turns on the workarounds for Tansu 0.6's defects"
            " (interlock.tansu); the embedded runner sets it. Apache Kafka needs none."
        ),
    )
    fetch_wait_max_ms: int = Field(
        default=100,
        ge=1,
        description=(
            "Longest a consumer's fetch waits for data (librdkafka fetch.wait.max.ms; the worker's"
            " too): an idle hop's latency bound, traded against idle fetches on the broker."
        ),
    )
    linger_ms: int = Field(
        default=25,
        ge=0,
        description=(
            "How long a producer gathers records into a batch (librdkafka linger.ms) unless its"
            " stage sets its own (the worker 10, CDC 20, the webhook landing 2): every produce"
            " request and every stored batch costs the broker, the embedded one more with each"
            " batch it keeps."
        ),
    )
    extra: dict[str, str] = Field(
        default_factory=dict, description="Any other librdkafka property, passed through as is."
    )

    @property
    def tansu(self) -> bool:
        """True when the broker is Tansu, whose defects need the workarounds in interlock.tansu."""
        return self.broker_kind == "tansu"

    def librdkafka(self) -> dict[str, Any]:
        """The common librdkafka configuration: bootstrap, client id and security options."""
        if not self.bootstrap_servers:
            raise ValueError("no Kafka bootstrap servers configured")
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
        }
        plain = {
            "security.protocol": self.security_protocol,
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
        }
        conf.update({k: v for k, v in plain.items() if v is not None})
        if self.sasl_password is not None:
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_key_password is not None:
            conf["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        conf.update(self.extra)
        return conf


class BrokerSettings(BaseModel):
    """The embedded Apache Kafka broker (``interlock broker``, ``interlock up``, the tests)."""

    heap_mb: int = Field(
        default=512, ge=256, description="The broker JVM's heap (-Xms = -Xmx, pre-touched), MiB."
    )
    java_home: str | None = Field(
        default=None, description="A JDK >= 17 to run it (default: JAVA_HOME, then java on PATH)."
    )
    jar_cache: str | None = Field(
        default=None,
        description="Where Maven's resolved jars are kept (default: ~/.cache/interlock/jars).",
    )
    data_dir: str | None = Field(
        default=None,
        description=(
            "The broker's log directory for `interlock broker` (default: .interlock/kafka);"
            " a restart on the same directory keeps every topic and record."
        ),
    )


class CdcSettings(BaseModel):
    """The CDC mapping stage (``interlock cdc``) and the built-in Postgres source."""

    topics: list[str] = Field(
        default_factory=lambda: ["^raw\\.erp\\..+"],
        description="Debezium change topics: names or ^regex (e.g. ^erp\\.public\\..+).",
    )
    mappings_dir: str | None = Field(default=None, description="Default: connectors/mappings/erp.")
    group_id: str = "interlock-cdc"
    strict: bool = Field(default=False, description="Dead-letter changes of unmapped tables.")
    batch_size: int = Field(default=5000, ge=1)
    vendor: str = "postgres-erp"
    postgres_dsn: SecretStr | None = Field(
        default=None, description="Source database of `interlock cdc postgres`."
    )
    postgres_tables: list[str] = Field(
        default_factory=list, description="Tables `interlock cdc postgres` captures."
    )
    postgres_slot: str = Field(
        default="interlock_erp", description="Logical replication slot of `interlock cdc postgres`."
    )
    raw_topic_prefix: str = Field(
        default="raw.erp.", description="The Postgres source writes table T to this prefix + T."
    )


class SchemaRegistrySettings(BaseModel):
    """Confluent Schema Registry; without a URL the registry-free single-object format is used."""

    url: str | None = Field(
        default=None,
        description="Registry URL (`mock://` in-process); unset: single-object encoding.",
    )
    basic_auth_user_info: SecretStr | None = None
    subject_strategy: Literal["topic", "record", "topic_record"] = Field(
        default="topic", description="Subject name strategy of registered schemas."
    )


class TopicDefaults(BaseModel):
    """Defaults applied to catalog topics that do not set their own."""

    partitions: int = Field(
        default=3,
        ge=1,
        description="For topics that set none (`up` on the embedded broker: one per worker).",
    )
    replication_factor: int = Field(default=1, ge=1, description="Of created topics.")
    retention_ms: int = Field(default=7 * 24 * 3600 * 1000, description="For topics that set none.")


class MetricsSettings(BaseModel):
    """Where a service serves ``/metrics``."""

    host: str = Field(default="127.0.0.1", description="Interface /metrics listens on.")
    port: int = Field(default=9464, ge=0, le=65535, description="Port of /metrics.")


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
    gc_young_threshold: int = Field(
        default=50_000,
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
        description="Reconciliation: how often each partition's parity ledger is compared again.",
    )


class RetrySettings(BaseModel):
    """Retry tiers of transient failures: tier n waits ``delays[n-1]`` seconds (retry.<t>.<n>)."""

    delays: list[float] = Field(
        default_factory=lambda: [1.0, 10.0, 60.0],
        description="Seconds before retry tier 1, 2, 3, ... (retry.<topic>.<n>).",
    )


class SupervisionSettings(BaseModel):
    """How ``interlock up`` restarts a child that died, and when it stops trying (a crash loop)."""

    restart_backoff_s: float = Field(
        default=1.0, gt=0, description="Wait before the first restart; doubles per crash."
    )
    restart_backoff_max_s: float = Field(
        default=30.0, gt=0, description="Longest wait before a restart."
    )
    crash_loop_restarts: int = Field(
        default=5,
        ge=0,
        description="Restarts of one child allowed within the window; one more crash stops the "
        "stack (exit 1).",
    )
    crash_loop_window_s: float = Field(
        default=300.0, gt=0, description="The window of `crash_loop_restarts`."
    )
    stop_grace_s: float = Field(
        default=10.0, gt=0, description="Wait after SIGTERM before a child is killed."
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


class LagExporterSettings(BaseModel):
    """The lag exporter: which consumer groups it watches and how often it samples them."""

    groups: str = Field(default=".*", description="Regular expression of group ids to watch.")
    interval_s: float = Field(default=5.0, gt=0, description="Seconds between two samplings.")
    window: int = Field(default=10, ge=2, description="Samples kept per partition for the status.")
    min_samples: int = Field(default=3, ge=2, description="Samples needed before WARN/STALL/STOP.")


class HubSpotWebhookSettings(BaseModel):
    """HubSpot v3 request signatures: the app's client secret and the accepted request age."""

    client_secret: SecretStr | None = Field(
        default=None, description="The HubSpot app's client secret (signs requests)."
    )
    max_age_s: float = Field(
        default=300.0, gt=0, description="Older signatures are refused (401 signature_stale)."
    )
    app_id: str | None = Field(default=None, description="Our app id: its changes are echoes.")


class StandardWebhookSettings(BaseModel):
    """Standard Webhooks sources: ``{"<source>": "whsec_..."}`` and the timestamp tolerance."""

    secrets: dict[str, SecretStr] = Field(
        default_factory=dict, description='Secret per source, JSON: {"<source>": "whsec_..."}.'
    )
    tolerance_s: float = Field(
        default=300.0, gt=0, description="Largest accepted webhook-timestamp skew."
    )


class WebhookSettings(BaseModel):
    """The webhook receiver (``interlock webhooks``) and its raw → canonical mapping stage."""

    host: str = Field(default="127.0.0.1", description="Interface the webhook receiver listens on.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port of the webhook receiver.")
    public_url: str | None = Field(default=None, description="Base URL as the sender sees it.")
    max_body_bytes: int = Field(
        default=1_048_576, ge=1, description="Larger bodies get 413 payload_too_large."
    )
    delivery_timeout_s: float = Field(
        default=5.0, gt=0, description="Wait for Kafka to acknowledge before answering 503."
    )
    retry_after_s: int = Field(default=5, ge=1, description="Retry-After of a 503 answer.")
    max_json_depth: int = Field(
        default=64,
        ge=1,
        le=256,
        description="Deepest nesting of arrays and objects in a body (400 json_too_deep beyond);"
        " measured before parsing, so no body can exhaust the parser's recursion.",
    )
    max_id_bytes: int = Field(
        default=256,
        ge=16,
        le=4096,
        description="Longest webhook id (webhook-id header: 431; HubSpot eventId or company id:"
        " 400): it becomes the raw record's Kafka key.",
    )
    max_header_bytes: int = Field(
        default=1024,
        ge=64,
        le=65_536,
        description="Longest value of every other header the receiver reads or keeps"
        " (timestamps, signatures, content type, user agent); 431 header_too_large beyond.",
    )
    probe_interval_s: float = Field(
        default=2.0, gt=0, description="How often /readyz's broker probe (a metadata request) runs."
    )
    probe_timeout_s: float = Field(
        default=1.0, gt=0, description="Longest wait for the broker probe's answer."
    )
    producer_recreate_limit: int = Field(
        default=5,
        ge=1,
        description="Failed attempts in a row to recreate the landing producer after a fatal"
        " error before the service declares itself dead (/healthz 503, exit 1).",
    )
    mapper_restart_limit: int = Field(
        default=5,
        ge=1,
        description="Failures in a row of the in-process mapping stage (each followed by a"
        " rebuild with a new producer and consumer) before the service declares itself dead.",
    )
    mapper: bool = Field(default=True, description="Run the mapping stage in the same process.")
    mappings_dir: str | None = Field(
        default=None,
        description="Standard-Webhooks CRM mappings (default: connectors/mappings/crm).",
    )
    accepted_deal_stages: list[str] = Field(
        default_factory=lambda: ["closedwon"],
        description="HubSpot deal stages that accept the quote.",
    )
    dedup_size: int = Field(
        default=16_384,
        ge=1,
        description="Webhook ids the mapping stage remembers to drop redeliveries early; older"
        " ones are dropped by the worker's event-id dedup (`INTERLOCK_PROCESSORS__DEDUP_TTL_S`),"
        " so a larger window only grows the process.",
    )
    dedup_ttl_s: float = Field(
        default=86_400.0, gt=0, description="How long a webhook id is remembered."
    )
    hubspot: HubSpotWebhookSettings = Field(default_factory=HubSpotWebhookSettings)
    standard: StandardWebhookSettings = Field(default_factory=StandardWebhookSettings)


class SinkTargetSettings(BaseModel):
    """One target API of the sinks: base URL, bearer token, per-call timeout."""

    base_url: str | None = None
    token: SecretStr | None = None
    timeout_s: float = Field(default=10.0, gt=0)


class SinkSettings(BaseModel):
    """The outbound sinks (``interlock sinks``): targets, circuit breaker, retry jitter."""

    erp: SinkTargetSettings = Field(default_factory=SinkTargetSettings)
    crm: SinkTargetSettings = Field(default_factory=SinkTargetSettings)
    breaker_failures: int = Field(default=5, ge=1, description="Failures in a row that open it.")
    breaker_reset_s: float = Field(default=30.0, gt=0, description="Open time before a probe.")
    retry_jitter_s: float = Field(default=0.5, ge=0)
    inline_retries: int = Field(
        default=2, ge=0, description="Quick retries of a transient failure before the retry tiers."
    )
    inline_backoff_s: float = Field(
        default=0.05, ge=0, description="First inline retry's delay bound; doubles, full jitter."
    )
    inline_max_wait_s: float = Field(
        default=0.5, ge=0, description="Longest Retry-After waited inline; longer: paused."
    )
    concurrency: int = Field(default=8, ge=1, description="Calls in flight per target.")
    max_age_s: float = Field(
        default=6 * 3600.0,
        gt=0,
        description="A command its target has not taken this long after it was written is "
        "dead-lettered; until then it waits for its target.",
    )
    group_id: str = "interlock-sinks"


class ConsoleUserSettings(BaseModel):
    """One operator of the exception desk's console: role, teams and hashed secrets only."""

    role: Literal["viewer", "operator", "admin"] = Field(
        default="operator",
        description="viewer: reads; operator: decides the cases of its teams; admin: any case.",
    )
    teams: list[str] = Field(
        default_factory=list, description="Teams whose cases the user decides (sales-ops, ...)."
    )
    password_hash: str | None = Field(
        default=None,
        description="Argon2 hash (`interlock console hash-password`), never the password.",
    )
    token_hash: str | None = Field(
        default=None, description="SHA-256 of the user's API token (`interlock console token`)."
    )


class ConsoleSettings(BaseModel):
    """The exception desk's web console (``interlock console``): where it listens, who signs in."""

    host: str = Field(default="127.0.0.1", description="Interface the console listens on.")
    port: int = Field(default=8090, ge=0, le=65535, description="Port of the console.")
    users_file: str | None = Field(
        default=None,
        description="YAML file of users (`interlock console add-user` writes it); its users"
        " join those of `users`.",
    )
    users: dict[str, ConsoleUserSettings] = Field(
        default_factory=dict, description='Users by name, JSON: {"alice": {"role": ..., ...}}.'
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs the session cookie; unset: a random key per start (every restart"
        " signs everyone out).",
    )
    session_max_age_s: int = Field(default=8 * 3600, ge=60, description="How long a sign-in lasts.")
    https_only: bool = Field(
        default=False, description="Mark the session cookie Secure (set it behind TLS)."
    )
    refresh_s: float = Field(
        default=0.2, gt=0, description="Longest wait of the case store's reads of review.cases."
    )
    delivery_timeout_s: float = Field(
        default=5.0, gt=0, description="Wait for Kafka to acknowledge a decision before a 503."
    )
    closed_cases_kept: int = Field(
        default=500,
        ge=10,
        description="Closed cases the console holds (those closed last); every open case is"
        " held. Older closed cases stay on review.cases (`interlock review show`).",
    )


class Settings(BaseSettings):
    """Every setting of Interlock, from the environment (``INTERLOCK_``) or a ``.env`` file."""

    model_config = SettingsConfigDict(
        env_prefix="INTERLOCK_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    embedded_broker: Literal["auto", "kafka", "tansu"] = Field(
        default="auto",
        description=(
            "The broker started when none is configured: Apache Kafka where Java >= 17 and Maven"
            " (or the cached jars) are present, else Tansu; `kafka` or `tansu` forces one."
        ),
    )
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    schema_registry: SchemaRegistrySettings = Field(default_factory=SchemaRegistrySettings)
    topics: TopicDefaults = Field(default_factory=TopicDefaults)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    processors: ProcessorSettings = Field(default_factory=ProcessorSettings)
    cdc: CdcSettings = Field(default_factory=CdcSettings)
    lag_exporter: LagExporterSettings = Field(default_factory=LagExporterSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    supervision: SupervisionSettings = Field(default_factory=SupervisionSettings)
    dlq: DlqSettings = Field(default_factory=DlqSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    sinks: SinkSettings = Field(default_factory=SinkSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    wire_format: Literal["single-object", "confluent"] = Field(
        default="single-object",
        description="Format written: single-object (no registry) or confluent; both are read.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of every service."
    )
    conventional_bootstrap: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS"),
        exclude=True,
    )

    @property
    def embedded(self) -> bool:
        """True when no broker is configured and the embedded one must be started."""
        return not self.kafka.bootstrap_servers

    def with_bootstrap(self, bootstrap: str) -> Settings:
        """A copy pointing at ``bootstrap`` (used once the embedded broker is up)."""
        kafka = self.kafka.model_copy(update={"bootstrap_servers": bootstrap})
        return self.model_copy(update={"kafka": kafka})

    def with_embedded_topics(self, workers: int) -> Settings:
        """A copy with one partition per worker for catalog topics, unless partitions were set.

        For the embedded broker, which shares the machine with every service: a broker pays
        for every partition in a produce and fetch request, and fewer partitions put more
        records in each batch (docs/operations/brokers.md). On Tansu at 300 actions/s its CPU
        went from 41-87% of a core with 3 partitions to 19-67% with 1.
        """
        if "partitions" in self.topics.model_fields_set:
            return self
        return self.model_copy(
            update={"topics": self.topics.model_copy(update={"partitions": max(1, workers)})}
        )

    def with_embedded_state(self) -> Settings:
        """A copy whose workers keep their tables under ``<data_dir>/embedded``, in memory.

        The embedded broker keeps nothing between runs, so a worker's local store must not
        either: a RocksDB table left by the last run would still hold keys (event ids seen,
        orders) that no changelog on the new broker backs. ``up`` empties that directory first.
        What ``rocksdb://`` is for (bounded memory over days, restarts that read only the
        changelogs' tail) cannot outlive the embedded broker, while its CPU cost is paid on the
        same cores: at ``--simulate 500`` the stack got 423 actions/s through on ``memory://``
        against 373 on ``rocksdb://`` (handoff p99 2.3 s against 4.3 s). So the store is
        ``memory://`` here unless one was configured.
        """
        update: dict[str, Any] = {"data_dir": str(Path(self.processors.data_dir) / "embedded")}
        if "store" not in self.processors.model_fields_set:
            update["store"] = "memory://"
        processors = self.processors.model_copy(update=update)
        return self.model_copy(update={"processors": processors})

    def model_post_init(self, __context: Any) -> None:
        if not self.kafka.bootstrap_servers and self.conventional_bootstrap:
            self.kafka.bootstrap_servers = self.conventional_bootstrap


def load_settings(**overrides: Any) -> Settings:
    """Load settings from the environment and ``.env`` (``KAFKA_BOOTSTRAP_SERVERS`` included)."""
    return Settings(**overrides)
