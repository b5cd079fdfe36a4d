"""Running the stack: metrics endpoints, supervision, the lag exporter, the exception desk's
console."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr

__all__ = [
    "ConsoleSettings",
    "ConsoleUserSettings",
    "LagExporterSettings",
    "MetricsSettings",
    "SupervisionSettings",
]


class MetricsSettings(BaseModel):
    """Where a service serves ``/metrics``."""

    host: str = Field(default="127.0.0.1", description="Interface /metrics listens on.")
    port: int = Field(default=9464, ge=0, le=65535, description="Port of /metrics.")


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


class LagExporterSettings(BaseModel):
    """The lag exporter: which consumer groups it watches and how often it samples them."""

    groups: str = Field(default=".*", description="Regular expression of group ids to watch.")
    interval_s: float = Field(default=5.0, gt=0, description="Seconds between two samplings.")
    window: int = Field(default=10, ge=2, description="Samples kept per partition for the status.")
    min_samples: int = Field(default=3, ge=2, description="Samples needed before WARN/STALL/STOP.")


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
