"""The actions a scenario yields and the fault mix it injects (plain data, no behaviour)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ops.simulator.truth import DriftCase

__all__ = [
    "Action",
    "ChangeAction",
    "CreditHoldAction",
    "DriftAction",
    "Fault",
    "FaultMix",
    "WebhookAction",
]

Fault = Literal["bad_json", "bad_signature"]


@dataclass(frozen=True, slots=True)
class WebhookAction:
    """One CRM change delivered to the receiver; a duplicate or redelivery repeats an earlier one.

    ``events`` are HubSpot-shaped events without ``occurredAt`` (stamped once, at first send);
    :mod:`ops.simulator.dialects` renders them for the CRM dialect of the run.
    """

    delivery_id: str
    events: tuple[dict[str, Any], ...]
    fault: Fault | None = None
    repeat: Literal["duplicate", "redelivery"] | None = None


@dataclass(frozen=True, slots=True)
class ChangeAction:
    """One ERP row change, published as a Debezium envelope (``repeat``: same LSN again)."""

    table: str
    op: Literal["c", "u", "d"]
    key: dict[str, Any]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    lsn: int
    repeat: bool = False


@dataclass(frozen=True, slots=True)
class CreditHoldAction:
    """The ERP puts a customer on credit hold or releases it (the ERP app emits the change)."""

    customer_number: str
    hold: bool
    row: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DriftAction:
    """Drift injected at this moment of the story (``--drift``): the fake ERP or CRM is told
    what a person or a flaky API will do to one order, deal or customer (see ``drift.py``)."""

    case: DriftCase


Action = WebhookAction | ChangeAction | CreditHoldAction | DriftAction


@dataclass(frozen=True)
class FaultMix:
    """How often each fault and business variant is injected (probabilities per opportunity)."""

    duplicate: float = 0.03
    redelivery: float = 0.02
    out_of_order: float = 0.05
    bad_json: float = 0.01
    bad_signature: float = 0.01
    invalid_quote: float = 0.04
    withdrawal: float = 0.05
    revision: float = 0.05
    cdc_redelivery: float = 0.01
    ownership_breach: float = 0.02
    credit_hold: float = 0.02
    bootstrap_accounts: int = 20
    dormant_accounts: int = 3
    bootstrap_products: int = 30
