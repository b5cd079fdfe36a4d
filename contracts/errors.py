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
    """The bytes name a schema (schema id or fingerprint) that neither the registry nor we know."""
    DECODE_FAILED = "DECODE_FAILED"
    """The bytes are truncated, have the wrong magic, are not JSON, or do not match their schema."""
    ENCODE_FAILED = "ENCODE_FAILED"
    """An event could not be serialized; transient when the schema registry is unreachable."""
    VALIDATION_MISSING_FIELD = "VALIDATION_MISSING_FIELD"
    """A field the contract or the flow needs is missing (e.g. a quote's ship-to)."""
    VALIDATION_FAILED = "VALIDATION_FAILED"
    """Well-formed data the business rules refuse (e.g. an account on credit hold)."""
    MAPPING_FAILED = "MAPPING_FAILED"
    """A raw webhook or change does not fit its declarative mapping."""
    UNKNOWN_TABLE = "UNKNOWN_TABLE"
    """A change of a table no mapping covers (dead-lettered only in strict mode)."""
    TRUNCATE_UNSUPPORTED = "TRUNCATE_UNSUPPORTED"
    """A captured TRUNCATE: never applied downstream, an operator decides."""
    VALUE_UNAVAILABLE = "VALUE_UNAVAILABLE"
    """A required value the change does not carry (Debezium's unavailable-value placeholder)."""
    SCHEMA_REQUIRED = "SCHEMA_REQUIRED"
    """A value that can only be read with the schema its converter leaves out."""
    OWNERSHIP_VIOLATION = "OWNERSHIP_VIOLATION"
    """A change, refused by policy, to a field the other system owns."""
    JOIN_TIMEOUT = "JOIN_TIMEOUT"
    """An event waited past the join grace for what it joins with (a quote for its account)."""
    PROCESSING_FAILED = "PROCESSING_FAILED"
    """Any other exception raised while handling a record."""
    SINK_REJECTED = "SINK_REJECTED"
    """The target API refused a command (4xx other than 408, 425, 429)."""
    SINK_UNAVAILABLE = "SINK_UNAVAILABLE"
    """Transient: the target API answered 5xx/408/425/429, timed out, or its breaker is open."""
    BROKER_UNAVAILABLE = "BROKER_UNAVAILABLE"
    """Transient: Kafka did not acknowledge in time, or the embedded broker did not start."""
    INCOMPATIBLE_SCHEMA = "INCOMPATIBLE_SCHEMA"
    """A contract version breaks its subject's compatibility policy."""
    CONFIG_INVALID = "CONFIG_INVALID"
    """A configuration file or setting is invalid; the message names the file and field."""
    RECON_ORDER_MISSING = "RECON_ORDER_MISSING"
    """Reconciliation: a quote's order was requested but the ERP has no order for it after
    ``INTERLOCK_PROCESSORS__RECONCILE_ORDER_SLA_S``; repair re-drives the create-order."""
    RECON_ORDER_MISMATCH = "RECON_ORDER_MISMATCH"
    """Reconciliation: the ERP order's net total, currency or lines differ from the accepted
    quote revision."""
    RECON_ORDER_WITHOUT_QUOTE = "RECON_ORDER_WITHOUT_QUOTE"
    """Reconciliation: an ERP order (or its shipment or invoice) that no quote correlates with,
    e.g. an order keyed in by hand."""
    RECON_DEAL_STILL_OPEN = "RECON_DEAL_STILL_OPEN"
    """Reconciliation: the ERP order is cancelled or on credit hold and no write-back telling
    the deal so was emitted in ``INTERLOCK_PROCESSORS__RECONCILE_WRITEBACK_SLA_S``."""
    RECON_FULFILMENT_NOT_REPORTED = "RECON_FULFILMENT_NOT_REPORTED"
    """Reconciliation: the ERP shipped or invoiced the order and no write-back telling the deal
    so was emitted in ``INTERLOCK_PROCESSORS__RECONCILE_WRITEBACK_SLA_S``."""
    RECON_CRM_VALUE_OVERWRITTEN = "RECON_CRM_VALUE_OVERWRITTEN"
    """Reconciliation: after our write-back, the CRM reported another value for a deal field
    the ERP owns (a person edited it)."""
    RECON_DEAL_MISSING = "RECON_DEAL_MISSING"
    """Reconciliation against the APIs: a deal that an accepted quote or an ERP order names is
    gone from the CRM (deleted without an event)."""
    POLICY_LIMIT_EXCEEDED = "POLICY_LIMIT_EXCEEDED"
    """An accepted quote over a limit of the commercial policy (``contracts/policy.yaml``):
    a discount, an order total or a new customer's first order; its order waits for approval."""
    MATCH_BELOW_THRESHOLD = "MATCH_BELOW_THRESHOLD"
    """An account match scored below ``INTERLOCK_PROCESSORS__MATCH_THRESHOLD``: a person
    decides whether the two accounts are the same company."""


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
