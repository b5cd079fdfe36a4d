"""The one Settings object: loaded once at the composition root and passed down.

Environment variables use the prefix ``INTERLOCK_`` and ``__`` for nesting, e.g.
``INTERLOCK_KAFKA__BOOTSTRAP_SERVERS``. The conventional ``KAFKA_BOOTSTRAP_SERVERS`` is honoured
too. With no bootstrap servers configured, the embedded broker is used.

The sections are defined by area: ``kafka`` (brokers, registry, topic defaults),
``processing`` (the worker, retry tiers, dead letters), ``connectors`` (CDC, webhooks, sinks)
and ``operations`` (metrics, supervision, lag exporter, console).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from interlock.collector import YOUNG_THRESHOLD
from interlock.settings.connectors import (
    CdcSettings,
    HubSpotWebhookSettings,
    SinkSettings,
    SinkTargetSettings,
    StandardWebhookSettings,
    WebhookSettings,
)
from interlock.settings.kafka import (
    BrokerSettings,
    KafkaSettings,
    SaslMechanism,
    SchemaRegistrySettings,
    SecurityProtocol,
    TopicDefaults,
)
from interlock.settings.operations import (
    ConsoleSettings,
    ConsoleUserSettings,
    LagExporterSettings,
    MetricsSettings,
    SupervisionSettings,
)
from interlock.settings.processing import DlqSettings, ProcessorSettings, RetrySettings

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
    "SaslMechanism",
    "SchemaRegistrySettings",
    "SecurityProtocol",
    "Settings",
    "SinkSettings",
    "SinkTargetSettings",
    "StandardWebhookSettings",
    "SupervisionSettings",
    "TopicDefaults",
    "WebhookSettings",
    "load_settings",
]


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
    gc_young_threshold: int = Field(
        default=YOUNG_THRESHOLD,
        ge=0,
        description="Allocations between young-generation collections of the garbage collector "
        "of the webhook receiver, the sinks, the CDC stages and the simulator; their start-up "
        "heap is frozen too (0: Python's defaults, nothing frozen). The worker has its own, "
        "processors.gc_young_threshold.",
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
