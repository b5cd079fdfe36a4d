"""Kafka: the brokers and how to reach them, the embedded broker, the schema registry, topic
defaults."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr

__all__ = [
    "BrokerSettings",
    "KafkaSettings",
    "SaslMechanism",
    "SchemaRegistrySettings",
    "SecurityProtocol",
    "TopicDefaults",
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
    fetch_wait_max_ms: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Longest a consumer's fetch waits for `fetch_min_bytes` of data (librdkafka"
            " fetch.wait.max.ms; the worker's too): a quiet hop's latency bound, traded against"
            " fetches on the broker. Default 25 on Apache Kafka; 100 on Tansu, which answers a"
            " fetch only when its wait ends."
        ),
    )
    fetch_min_bytes: int = Field(
        default=16384,
        ge=1,
        description=(
            "Data a consumer's fetch waits for (up to `fetch_wait_max_ms`) before the broker"
            " answers it (librdkafka fetch.min.bytes; the worker's too): under load a fetch"
            " brings a batch rather than the first record or two, which costs the broker and"
            " every consumer far less CPU per record. 1: answered as soon as any data arrives."
        ),
    )
    linger_ms: int = Field(
        default=25,
        ge=0,
        description=(
            "How long a producer gathers records into a batch (librdkafka linger.ms) unless its"
            " stage sets its own (the worker processors.linger_ms, CDC 20, the webhook landing 1):"
            " every produce"
            " request and every stored batch costs the broker, the embedded one more with each"
            " batch it keeps."
        ),
    )
    extra: dict[str, str] = Field(
        default_factory=dict, description="Any other librdkafka property, passed through as is."
    )

    @property
    def fetch_wait_ms(self) -> int:
        """``fetch_wait_max_ms``, or the broker's default when it is not set."""
        if self.fetch_wait_max_ms is not None:
            return self.fetch_wait_max_ms
        return 100 if self.tansu else 25

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
    jit: Literal["quick", "full"] = Field(
        default="quick",
        description=(
            "The broker JVM's compiler: `quick` compiles once, cheaply (C1 only), `full` also"
            " recompiles hot code with C2, which costs the CPU of several minutes of compiling"
            " before the broker settles, then less per request. `quick` suits `up` and the"
            " tests, whose broker starts fresh and shares the cores; `full` a broker that runs"
            " for hours (docs/performance/notes.md)."
        ),
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
