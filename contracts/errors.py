"""The one root exception of Interlock and the reason codes every failure carries.

It lives in ``contracts`` because every layer may import ``contracts`` and nothing below it:
the kernel, the connectors and the processors all raise and route these.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "CompatibilityError",
    "ConfigError",
    "ContractError",
    "DecodeError",
    "InterlockError",
    "Reason",
    "SchemaUnknownError",
    "ValidationError",
]


class Reason(StrEnum):
    """Why something failed: stable codes that land in dead-letter headers and metrics."""

    SCHEMA_UNKNOWN = "SCHEMA_UNKNOWN"
    DECODE_FAILED = "DECODE_FAILED"
    ENCODE_FAILED = "ENCODE_FAILED"
    VALIDATION_MISSING_FIELD = "VALIDATION_MISSING_FIELD"
    VALIDATION_FAILED = "VALIDATION_FAILED"
    MAPPING_FAILED = "MAPPING_FAILED"
    UNKNOWN_TABLE = "UNKNOWN_TABLE"
    OWNERSHIP_VIOLATION = "OWNERSHIP_VIOLATION"
    JOIN_TIMEOUT = "JOIN_TIMEOUT"
    PROCESSING_FAILED = "PROCESSING_FAILED"
    SINK_REJECTED = "SINK_REJECTED"
    SINK_UNAVAILABLE = "SINK_UNAVAILABLE"
    BROKER_UNAVAILABLE = "BROKER_UNAVAILABLE"
    INCOMPATIBLE_SCHEMA = "INCOMPATIBLE_SCHEMA"
    CONFIG_INVALID = "CONFIG_INVALID"


class InterlockError(Exception):
    """Root of every error Interlock raises on purpose.

    Attributes:
        reason: the stable reason code.
        transient: True when retrying later may succeed (network, 5xx); False when the input
            itself is wrong and must go to a dead-letter topic.
        raw: the original bytes that could not be handled, kept so nothing is lost.
    """

    reason: Reason = Reason.PROCESSING_FAILED
    transient: bool = False

    def __init__(
        self,
        message: str,
        *,
        reason: Reason | None = None,
        transient: bool | None = None,
        raw: bytes | None = None,
    ) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        if transient is not None:
            self.transient = transient
        self.raw = raw

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(InterlockError):
    """A configuration file or setting is invalid; the message names the file and field."""

    reason = Reason.CONFIG_INVALID


class ContractError(InterlockError):
    """Base for failures of the canonical contracts (encode, decode, compatibility)."""


class SchemaUnknownError(ContractError):
    """The bytes name a schema (id or fingerprint) that neither the registry nor we know."""

    reason = Reason.SCHEMA_UNKNOWN


class DecodeError(ContractError):
    """The bytes are truncated, have the wrong magic, or do not match their schema."""

    reason = Reason.DECODE_FAILED


class CompatibilityError(ContractError):
    """A schema version breaks the compatibility policy of its subject."""

    reason = Reason.INCOMPATIBLE_SCHEMA


class ValidationError(InterlockError):
    """A well-formed record carries business data that is not acceptable."""

    reason = Reason.VALIDATION_FAILED
