"""The one Settings object: loaded once at the composition root and passed down.

Environment variables use the prefix ``INTERLOCK_`` and ``__`` for nesting, e.g.
``INTERLOCK_KAFKA__BOOTSTRAP_SERVERS``. The conventional ``KAFKA_BOOTSTRAP_SERVERS`` is honoured
too. With no bootstrap servers configured, the embedded broker is used.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "DlqSettings",
    "KafkaSettings",
    "MetricsSettings",
    "ProcessorSettings",
    "RetrySettings",
    "SchemaRegistrySettings",
    "Settings",
    "TopicDefaults",
    "load_settings",
]

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"]


class KafkaSettings(BaseModel):
    """Where the brokers are and how to talk to them (mapped to librdkafka names)."""

    bootstrap_servers: str | None = None
    security_protocol: SecurityProtocol | None = None
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None
    client_id: str = "interlock"
    extra: dict[str, str] = Field(
        default_factory=dict, description="Any other librdkafka property, passed through as is."
    )

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


class SchemaRegistrySettings(BaseModel):
    """Confluent Schema Registry; without a URL the registry-free single-object format is used."""

    url: str | None = None
    basic_auth_user_info: SecretStr | None = None
    subject_strategy: Literal["topic", "record", "topic_record"] = "topic"


class TopicDefaults(BaseModel):
    """Defaults applied to catalog topics that do not set their own."""

    partitions: int = Field(default=3, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    retention_ms: int = 7 * 24 * 3600 * 1000


class MetricsSettings(BaseModel):
    """Where a service serves ``/metrics``."""

    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)


class ProcessorSettings(BaseModel):
    """The Faust worker: identity, state store and group timings."""

    app_id: str = "interlock-processors"
    store: str = "memory://"
    web_port: int = Field(default=6066, ge=0, le=65535)
    session_timeout_s: float = 10.0
    heartbeat_interval_s: float = 1.0
    data_dir: str = ".interlock/faust"


class RetrySettings(BaseModel):
    """Retry tiers of transient failures: tier n waits ``delays[n-1]`` seconds (retry.<t>.<n>)."""

    delays: list[float] = Field(default_factory=lambda: [1.0, 10.0, 60.0])


class DlqSettings(BaseModel):
    """Dead-letter tooling: where replays and purges are recorded, default replay pacing."""

    audit_topic: str = "audit.replays"
    purge_topic: str = "audit.dlq-purges"
    replay_rate: float | None = Field(default=None, gt=0, description="messages/s; None: unpaced")


class Settings(BaseSettings):
    """Every setting of Interlock, from the environment (``INTERLOCK_``) or a ``.env`` file."""

    model_config = SettingsConfigDict(
        env_prefix="INTERLOCK_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    schema_registry: SchemaRegistrySettings = Field(default_factory=SchemaRegistrySettings)
    topics: TopicDefaults = Field(default_factory=TopicDefaults)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    processors: ProcessorSettings = Field(default_factory=ProcessorSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    dlq: DlqSettings = Field(default_factory=DlqSettings)
    wire_format: Literal["single-object", "confluent"] = "single-object"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
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

    def model_post_init(self, __context: Any) -> None:
        if not self.kafka.bootstrap_servers and self.conventional_bootstrap:
            self.kafka.bootstrap_servers = self.conventional_bootstrap


def load_settings(**overrides: Any) -> Settings:
    """Load settings from the environment; the only place that reads ``os.environ``."""
    settings = Settings(**overrides)
    if not settings.kafka.bootstrap_servers and os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        settings.kafka.bootstrap_servers = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    return settings
