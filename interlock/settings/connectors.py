"""The connectors: the CDC stage, the webhook receiver and the outbound sinks."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

__all__ = [
    "CdcSettings",
    "HubSpotWebhookSettings",
    "SinkSettings",
    "SinkTargetSettings",
    "StandardWebhookSettings",
    "WebhookSettings",
]


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
