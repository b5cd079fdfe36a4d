"""Ground truth of a simulation, and what the fake APIs and the sender recorded, as JSON.

``GroundTruth`` is what must happen (filled by the scenario); ``Recorded`` is what the fake
ERP/CRM APIs and the webhook sender saw (filled while running). Both are written to one JSON
file at the end of a run and periodically, and read back by the invariant check.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import orjson

from ops.simulator.conventions import QUOTE_DLQ_TOPIC, VALIDATION_REASON_PREFIX
from ops.simulator.desk import DeskDecision

__all__ = [
    "CrmCall",
    "DriftCase",
    "DriftInjected",
    "ErpAmendment",
    "ErpOrder",
    "ErpStatusChange",
    "ExpectedOrder",
    "GroundTruth",
    "InvalidQuote",
    "OwnershipBreach",
    "Recorded",
    "RejectedWebhook",
    "SweepFinding",
    "load_run",
    "read_run",
    "run_document",
    "save_run",
    "write_run",
]

EXPECTED_STATUS = {"bad_json": 400, "bad_signature": 401}


@dataclass(frozen=True)
class ExpectedOrder:
    """An accepted, valid quote: exactly one ERP order, amended up to ``revision``."""

    quote_id: str
    revision: int
    deal_id: str
    company_id: str
    out_of_order: bool = False


@dataclass(frozen=True)
class InvalidQuote:
    """An accepted quote that breaks a business rule: dead-lettered, never ordered."""

    quote_id: str
    revision: int
    deal_id: str
    why: str
    topic: str = QUOTE_DLQ_TOPIC
    reason_prefix: str = VALIDATION_REASON_PREFIX


@dataclass(frozen=True)
class RejectedWebhook:
    """A malformed or badly signed request: answered 4xx, never acknowledged, never landed."""

    delivery_id: str
    fault: str
    expected_status: int


@dataclass(frozen=True)
class OwnershipBreach:
    """The ERP changed a field the CRM owns: the value must never reach the CRM."""

    company_id: str
    customer_number: str
    field: str
    value: str


@dataclass(frozen=True)
class DriftCase:
    """Drift the scenario injects (``--drift``): its kind (``drift.DRIFT_KINDS``), the moment of
    the story (the ``quote_number``-th quote eligible for drift) and what it is done to."""

    case_id: str
    kind: str
    quote_number: int
    quote_id: str | None = None
    deal_id: str | None = None
    company_id: str | None = None
    customer_number: str | None = None
    change: dict[str, Any] = field(default_factory=dict)
    """What the person changes, drawn from the seed (a discount, a hand-made order's amount)."""


@dataclass
class GroundTruth:
    """What must happen, as generated from the seed."""

    seed: int
    accounts: int = 0
    webhooks: int = 0
    erp_changes: int = 0
    duplicates: int = 0
    redeliveries: int = 0
    cdc_redeliveries: int = 0
    expected_orders: list[ExpectedOrder] = field(default_factory=list)
    invalid_quotes: list[InvalidQuote] = field(default_factory=list)
    withdrawn: list[dict[str, str]] = field(default_factory=list)
    rejected: list[RejectedWebhook] = field(default_factory=list)
    ownership_breaches: list[OwnershipBreach] = field(default_factory=list)
    drift: list[DriftCase] = field(default_factory=list)
    """Drift injected at seeded moments (empty without ``--drift``)."""

    def __post_init__(self) -> None:
        # where each quote's expected orders are in ``expected_orders``: a revision is not a
        # scan of the run (not a field: neither saved nor compared)
        self._order_at: dict[str, list[int]] = {}
        for i, order in enumerate(self.expected_orders):
            self._order_at.setdefault(order.quote_id, []).append(i)

    def add_expected_order(
        self, quote_id: str, revision: int, deal_id: str, company_id: str, out_of_order: bool
    ) -> None:
        self._order_at.setdefault(quote_id, []).append(len(self.expected_orders))
        self.expected_orders.append(
            ExpectedOrder(quote_id, revision, deal_id, company_id, out_of_order)
        )

    def revise_expected_order(self, quote_id: str, revision: int) -> None:
        """A later revision was accepted: the quote's one order must be amended to it."""
        for i in self._order_at.get(quote_id, ()):
            self.expected_orders[i] = replace(self.expected_orders[i], revision=revision)

    def add_invalid(self, quote_id: str, revision: int, deal_id: str, why: str) -> None:
        self.invalid_quotes.append(InvalidQuote(quote_id, revision, deal_id, why))

    def add_withdrawn(self, quote_id: str, deal_id: str) -> None:
        self.withdrawn.append({"quote_id": quote_id, "deal_id": deal_id})

    def add_rejected(self, delivery_id: str, fault: str) -> None:
        self.rejected.append(RejectedWebhook(delivery_id, fault, EXPECTED_STATUS[fault]))

    def add_ownership_breach(
        self, company_id: str, customer_number: str, field_name: str, value: str
    ) -> None:
        self.ownership_breaches.append(
            OwnershipBreach(company_id, customer_number, field_name, value)
        )

    def add_drift(self, case: DriftCase) -> None:
        self.drift.append(case)

    def summary(self) -> dict[str, int]:
        """Counts of everything generated (for the report)."""
        drift = {"drift_cases": len(self.drift)} if self.drift else {}
        return {
            **drift,
            "accounts": self.accounts,
            "webhooks": self.webhooks,
            "erp_changes": self.erp_changes,
            "expected_orders": len(self.expected_orders),
            "invalid_quotes": len(self.invalid_quotes),
            "withdrawn_quotes": len(self.withdrawn),
            "rejected_webhooks": len(self.rejected),
            "duplicates": self.duplicates,
            "redeliveries": self.redeliveries,
            "cdc_redeliveries": self.cdc_redeliveries,
            "ownership_breaches": len(self.ownership_breaches),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> GroundTruth:
        return cls(
            seed=int(doc["seed"]),
            **{k: int(doc.get(k, 0)) for k in _COUNTS},
            expected_orders=[ExpectedOrder(**o) for o in doc.get("expected_orders", [])],
            invalid_quotes=[InvalidQuote(**o) for o in doc.get("invalid_quotes", [])],
            withdrawn=list(doc.get("withdrawn", [])),
            rejected=[RejectedWebhook(**o) for o in doc.get("rejected", [])],
            ownership_breaches=[OwnershipBreach(**o) for o in doc.get("ownership_breaches", [])],
            drift=[DriftCase(**o) for o in doc.get("drift", [])],
        )


_COUNTS = ("accounts", "webhooks", "erp_changes", "duplicates", "redeliveries", "cdc_redeliveries")


@dataclass(frozen=True)
class ErpOrder:
    """An order the fake ERP created (one per accepted Idempotency-Key)."""

    order_number: str
    idempotency_key: str
    quote_id: str | None
    revision: int | None
    deal_id: str | None
    customer_number: str | None


@dataclass(frozen=True)
class ErpStatusChange:
    """A status the fake ERP gave an order (each one must be written back to the CRM)."""

    order_number: str
    deal_id: str | None
    status: str
    cause: str = "order"


@dataclass(frozen=True)
class ErpAmendment:
    """An amendment (new quote revision) or cancellation the fake ERP applied."""

    order_number: str
    idempotency_key: str
    kind: str
    revision: int | None


@dataclass(frozen=True)
class CrmCall:
    """A write-back the fake CRM received."""

    method: str
    object_type: str
    object_id: str
    properties: dict[str, Any]
    idempotency_key: str | None


@dataclass(frozen=True)
class DriftInjected:
    """A drift case as the fake ERP or CRM carried it out: the subject reconciliation must name
    (quote id, ERP order number or deal id), and when (wall-clock seconds)."""

    case_id: str
    kind: str
    subject: str
    at: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepFinding:
    """One finding of the simulator's ``reconcile check --against-apis`` sweep of its fakes."""

    finding_id: str
    kind: str
    subject: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recorded:
    """What the sender and the fake APIs observed; thread-safe appends."""

    responses: dict[str, int] = field(default_factory=dict)
    rejected_responses: dict[str, int] = field(default_factory=dict)
    erp_orders: list[ErpOrder] = field(default_factory=list)
    erp_amendments: list[ErpAmendment] = field(default_factory=list)
    erp_create_calls: int = 0
    erp_replays: int = 0
    erp_unavailable: int = 0
    erp_status_changes: list[ErpStatusChange] = field(default_factory=list)
    crm_calls: list[CrmCall] = field(default_factory=list)
    echoes_sent: int = 0
    outage_answers: dict[str, int] = field(default_factory=dict)
    """Calls the fake APIs refused during a scheduled outage, by ``<target>:<status>``."""
    review_decisions: list[DeskDecision] = field(default_factory=list)
    """What the simulated exception desk decided (``--decide``), one entry per case."""
    drift_injected: list[DriftInjected] = field(default_factory=list)
    """Drift the fakes injected (``--drift``), as it happened."""
    api_sweep: dict[str, Any] = field(default_factory=dict)
    """The sweep of the fake APIs after a drift run: ``at``, ``orders``, ``deals`` read, and
    ``findings`` (:class:`SweepFinding`), or ``error``; empty when none ran."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def response(self, status: int, delivery_id: str | None = None) -> None:
        """Count one answer of the receiver (and remember it for an injected bad request)."""
        with self._lock:
            self.responses[str(status)] = self.responses.get(str(status), 0) + 1
            if delivery_id is not None:
                self.rejected_responses[delivery_id] = status

    def outage_answer(self, target: str, status: int) -> None:
        with self._lock:
            key = f"{target}:{status}"
            self.outage_answers[key] = self.outage_answers.get(key, 0) + 1

    def add(self, attr: str, item: Any) -> None:
        with self._lock:
            getattr(self, attr).append(item)

    def bump(self, attr: str) -> None:
        with self._lock:
            setattr(self, attr, getattr(self, attr) + 1)

    def snapshot(self) -> dict[str, Any]:
        """Every recording, shallow copies taken under the lock (the fakes append while a run is
        saved); the items stay frozen dataclasses, which :func:`save_run` serializes as they are.
        """
        with self._lock:
            return {f.name: _copy(getattr(self, f.name)) for f in fields(self) if f.name != "_lock"}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Recorded:
        return cls(
            responses=dict(doc.get("responses", {})),
            rejected_responses=dict(doc.get("rejected_responses", {})),
            erp_orders=[ErpOrder(**o) for o in doc.get("erp_orders", [])],
            erp_amendments=[ErpAmendment(**o) for o in doc.get("erp_amendments", [])],
            erp_create_calls=int(doc.get("erp_create_calls", 0)),
            erp_replays=int(doc.get("erp_replays", 0)),
            erp_unavailable=int(doc.get("erp_unavailable", 0)),
            erp_status_changes=[ErpStatusChange(**o) for o in doc.get("erp_status_changes", [])],
            crm_calls=[CrmCall(**o) for o in doc.get("crm_calls", [])],
            echoes_sent=int(doc.get("echoes_sent", 0)),
            drift_injected=[DriftInjected(**o) for o in doc.get("drift_injected", [])],
            api_sweep=dict(doc.get("api_sweep", {})),
            outage_answers={str(k): int(v) for k, v in doc.get("outage_answers", {}).items()},
            review_decisions=[DeskDecision(**d) for d in doc.get("review_decisions", [])],
        )


def _copy(value: Any) -> Any:
    if isinstance(value, list | dict):
        return value.copy()
    return value


_SAVE_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS


def save_run(path: Path, truth: GroundTruth, recorded: Recorded, **meta: Any) -> None:
    """Write ground truth + recordings atomically (a reader never sees half a file)."""
    write_run(path, run_document(truth, recorded, **meta))


def run_document(truth: GroundTruth, recorded: Recorded, **meta: Any) -> dict[str, Any]:
    """What :func:`write_run` writes: the recordings as shallow copies taken under their lock,
    the ground truth as it is (only the generating thread changes it)."""
    recorded_now = recorded.snapshot()
    return {"meta": meta, "summary": truth.summary(), "truth": truth, "recorded": recorded_now}


def write_run(path: Path, doc: dict[str, Any]) -> None:
    """Write a :func:`run_document` atomically.

    orjson writes the dataclasses as they are, in one call: no copy of the run as dicts first.
    Values it cannot write (none are expected) are written as ``str``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(doc, default=str, option=_SAVE_OPTIONS))
    os.replace(tmp, path)


def load_run(path: Path) -> tuple[GroundTruth, Recorded]:
    """Read a file written by :func:`save_run`."""
    _meta, truth, recorded = read_run(path)
    return truth, recorded


def read_run(path: Path) -> tuple[dict[str, Any], GroundTruth, Recorded]:
    """Read a file written by :func:`save_run`, its ``meta`` (the run's counts) too."""
    doc = json.loads(path.read_text())
    truth = GroundTruth.from_dict(doc["truth"])
    return doc.get("meta", {}), truth, Recorded.from_dict(doc.get("recorded", {}))
