"""The simulated ERP: an order API the sinks call, and the order lifecycle it publishes by CDC.

``ErpBook`` holds the logic (idempotent order creation, amendments, cancellations, credit holds,
the confirm → ship → invoice lifecycle, injected 503s) and emits every row change it makes as a
:class:`ChangeAction`, which the driver publishes as a Debezium event. ``erp_api.create_erp_app``
is the thin Starlette shell over it (the contract of ``connectors/sinks/contract.py``).
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ops.simulator.conventions import ERP_ORDER_STATUS
from ops.simulator.scenario import ChangeAction
from ops.simulator.truth import (
    DriftCase,
    DriftInjected,
    ErpAmendment,
    ErpOrder,
    ErpStatusChange,
    Recorded,
)

__all__ = ["ErpBook", "ErpTimings"]

ChangeSink = Callable[[ChangeAction], None]
#: ERP log positions of the API's own changes, disjoint from the scenario's.
_LSN_BASE = 10**12


@dataclass(frozen=True)
class ErpTimings:
    """Seconds after creation at which the ERP confirms, ships and invoices an order."""

    confirm_s: float = 2.0
    ship_s: float = 5.0
    invoice_s: float = 8.0
    release_s: float = 4.0
    unavailable: float = 0.05
    order_hold: float = 0.05


#: The lifecycle step of an order that carries out its drift (``--drift``).
_DRIFT_STEP = "DRIFT"


@dataclass
class _Order:
    row: dict[str, Any]
    created_at: float
    steps: list[tuple[float, str]]
    drift: DriftCase | None = None
    deleted: bool = False
    hand_made: bool = False
    """Keyed in by a person (drift): no quote, no deal, nothing to write back."""


def _minor(value: Any) -> int:
    try:
        return round(float(value) * 100)
    except (TypeError, ValueError):
        return 0


def _subtotal_minor(lines: list[dict[str, Any]]) -> int:
    return sum(_minor(ln.get("quantity")) * _minor(ln.get("unit_price")) // 100 for ln in lines)


def _order_row(
    number: str, customer: str | None, subtotal_minor: int, **fields: Any
) -> dict[str, Any]:
    """A sales order row as the ERP captures it: 19 % tax, net 30, no dates yet."""
    return {
        "order_number": number,
        "customer_number": customer,
        **fields,
        "subtotal_minor": subtotal_minor,
        "tax_minor": subtotal_minor * 19 // 100,
        "total_minor": subtotal_minor * 119 // 100,
        "payment_terms": "N30",
        "promised_date": None,
        "ordered_at": None,
        "updated_at": None,
    }


class ErpBook:
    """The ERP's order book: thread-safe, deterministic in its decisions for a seed."""

    def __init__(
        self,
        emit: ChangeSink,
        recorded: Recorded,
        *,
        seed: int = 0,
        timings: ErpTimings | None = None,
        clock: Callable[[], float],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._emit = emit
        self._wall = wall
        self.recorded = recorded
        self.timings = timings or ErpTimings()
        self._clock = clock
        self._rng = random.Random(seed + 1)
        self._lock = threading.Lock()
        self._answers: dict[str, tuple[int, dict[str, Any]]] = {}
        self._orders: dict[str, _Order] = {}
        self._due: list[tuple[float, str]] = []
        self._lsn = _LSN_BASE
        self._drift: dict[str, DriftCase] = {}

    # changes -----------------------------------------------------------------------------------
    def _change(self, table: str, op: str, key: dict[str, Any], before: Any, after: Any) -> None:
        self._lsn += 1
        self._emit(ChangeAction(table, op, key, before, after, self._lsn))  # type: ignore[arg-type]

    def _set_status(self, order: _Order, status: str, cause: str = "order", **extra: Any) -> None:
        before = dict(order.row)
        order.row.update(status=status, updated_at=None, **extra)
        self._change(
            "sales_orders",
            "u",
            {"order_number": order.row["order_number"]},
            before,
            dict(order.row),
        )
        self._record_status(order, status, cause)

    def _record_status(self, order: _Order, status: str, cause: str) -> None:
        if order.hand_made:  # no deal to tell
            return
        canonical = ERP_ORDER_STATUS.get(status, status)
        if canonical != "REQUESTED":  # the CRM is told from confirmation on
            self.recorded.add(
                "erp_status_changes",
                ErpStatusChange(
                    order.row["order_number"], order.row["crm_deal_id"], canonical, cause
                ),
            )

    # API ---------------------------------------------------------------------------------------
    def create(self, key: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``POST /orders``: one order per Idempotency-Key; 503 sometimes; 422 if invalid."""
        with self._lock:
            self.recorded.bump("erp_create_calls")
            if not key:
                return 400, {"error": "missing Idempotency-Key"}
            if key in self._answers:
                self.recorded.bump("erp_replays")
                return self._answers[key]
            if self._rng.random() < self.timings.unavailable:
                self.recorded.bump("erp_unavailable")
                return 503, {"error": "ERP is busy, try again"}
            lines = body.get("lines") or []
            customer = body.get("erp_customer_number")
            bad = [ln for ln in lines if _minor(ln.get("quantity")) <= 0]
            if not lines or bad or not customer:
                answer = (
                    422,
                    {
                        "error": "order rejected",
                        "lines": len(lines),
                        "bad": len(bad),
                        "customer": customer,
                    },
                )
                self._answers[key] = answer
                return answer
            number = f"SO-{len(self._orders) + 1:06d}"
            hold = self._rng.random() < self.timings.order_hold
            row = _order_row(
                number,
                customer,
                _subtotal_minor(lines),
                quote_id=body.get("quote_id"),
                quote_revision=body.get("quote_revision"),
                crm_deal_id=body.get("crm_record_id"),
                customer_po=body.get("customer_po_number"),
                status="HOLD" if hold else "OPEN",
                credit_hold=hold,
                currency=body.get("currency") or "EUR",
            )
            now = self._clock()
            release_s = self.timings.release_s
            steps = [(now + release_s, "RELEASED")] if hold else []
            steps += self._lifecycle(now + (release_s if hold else 0.0))
            order = _Order(row, now, steps)
            if row["quote_id"] in self._drift:
                order.drift = self._drift.pop(row["quote_id"])
                _schedule_drift(order)
            heapq.heappush(self._due, (steps[0][0], number))
            self._orders[number] = order
            self._change("sales_orders", "c", {"order_number": number}, None, dict(row))
            self._record_status(order, row["status"], "order")
            if hold:  # the sinks' outcome event of this answer is a second cause of the write-back
                self._record_status(order, row["status"], "answer")
            self.recorded.add(
                "erp_orders",
                ErpOrder(
                    number,
                    key,
                    row["quote_id"],
                    row["quote_revision"],
                    row["crm_deal_id"],
                    customer,
                ),
            )
            answer = (201, {"order_number": number, "status": ERP_ORDER_STATUS[row["status"]]})
            self._answers[key] = answer
            return answer

    def amend(
        self, number: str, key: str | None, body: dict[str, Any], kind: str
    ) -> tuple[int, dict[str, Any]]:
        """``PATCH /orders/{n}`` (amend to a new quote revision) or ``POST .../cancel``."""
        with self._lock:
            if not key:
                return 400, {"error": "missing Idempotency-Key"}
            if key in self._answers:
                self.recorded.bump("erp_replays")
                return self._answers[key]
            order = self._orders.get(number)
            if order is None or order.deleted:
                return 404, {"error": f"no order {number}"}
            if kind == "cancel":
                order.steps.clear()
                self._set_status(order, "CANCELLED")
                revision = order.row.get("quote_revision")
            else:
                revision = body.get("quote_revision")
                before = dict(order.row)
                order.row.update(quote_revision=revision, updated_at=None)
                if body.get("lines"):  # the amended quote's amounts, as on creation
                    sub = _subtotal_minor(body["lines"])
                    order.row.update(
                        subtotal_minor=sub, tax_minor=sub * 19 // 100, total_minor=sub * 119 // 100
                    )
                self._change("sales_orders", "u", {"order_number": number}, before, dict(order.row))
            self.recorded.add("erp_amendments", ErpAmendment(number, key, kind, revision))
            self._record_status(order, order.row["status"], "answer")
            answer = (
                200,
                {
                    "order_number": number,
                    "status": ERP_ORDER_STATUS.get(order.row["status"], "UNKNOWN"),
                },
            )
            self._answers[key] = answer
            return answer

    def set_credit_hold(self, customer_number: str, hold: bool, row: dict[str, Any]) -> None:
        """The ERP puts a customer on credit hold (or releases it): a customers row change."""
        with self._lock:
            before = {**row, "credit_hold": not hold}
            self._change(
                "customers",
                "u",
                {"customer_number": customer_number},
                before,
                {**row, "credit_hold": hold},
            )

    def has_due(self) -> bool:
        """Whether some order still has a lifecycle step to come."""
        with self._lock:
            return bool(self._due)

    def advance(self) -> int:
        """Apply every lifecycle step that is due; returns how many were applied."""
        now, applied = self._clock(), 0
        with self._lock:
            # a heap of (next step due, order): a tick touches only orders with a step due
            while self._due and self._due[0][0] <= now:
                _, number = heapq.heappop(self._due)
                order = self._orders[number]
                while order.steps and order.steps[0][0] <= now:
                    _, status = order.steps.pop(0)
                    self._step(order, status)
                    applied += 1
                if order.steps:
                    heapq.heappush(self._due, (order.steps[0][0], number))
        return applied

    def _step(self, order: _Order, status: str) -> None:
        row = order.row
        number, customer = row["order_number"], row["customer_number"]
        today = datetime.now(UTC).date()
        if status == _DRIFT_STEP:
            self._carry_out(order)
        elif status == "RELEASED":
            self._set_status(order, "RELEASED", credit_hold=False)
        elif status == "CONFIRMED":
            promised = (today + timedelta(days=7)).isoformat()
            self._set_status(order, "CONFIRMED", promised_date=promised)
        elif status == "SHIPPED":
            shipment = {
                "shipment_number": f"SH-{number[3:]}",
                "order_number": number,
                "customer_number": customer,
                "status": "SHIPPED",
                "carrier": "DHL",
                "tracking_number": f"JD{number[3:]}0001",
                "shipped_at": None,
                "delivered_at": None,
                "updated_at": None,
            }
            self._issue(order, "SHIPPED", "shipment", shipment)
        elif status == "INVOICED":
            invoice = {
                "invoice_number": f"INV-{number[3:]}",
                "order_number": number,
                "customer_number": customer,
                "amount_minor": row["subtotal_minor"],
                "tax_minor": row["tax_minor"],
                "paid_minor": 0,
                "currency": row["currency"],
                "status": "OPEN",
                "issued_date": today.isoformat(),
                "due_date": (today + timedelta(days=30)).isoformat(),
                "paid_at": None,
                "updated_at": None,
            }
            self._issue(order, "INVOICED", "invoice", invoice)

    def _lifecycle(self, start: float) -> list[tuple[float, str]]:
        """When an order captured (or released) at ``start`` is confirmed, shipped, invoiced."""
        t = self.timings
        return [
            (start + t.confirm_s, "CONFIRMED"),
            (start + t.ship_s, "SHIPPED"),
            (start + t.invoice_s, "INVOICED"),
        ]

    def _issue(self, order: _Order, status: str, document: str, row: dict[str, Any]) -> None:
        """Create the order's shipment or invoice (``<document>s`` table), then move the order."""
        key = f"{document}_number"
        self._change(f"{document}s", "c", {key: row[key]}, None, row)
        self._record_status(order, status, document)
        self._set_status(order, status)

    def orders(self, after: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Orders by order number, oldest first: those after ``after``, at most ``limit``
        (a deleted order is gone)."""
        with self._lock:
            rows = [
                dict(o.row)
                for n, o in self._orders.items()
                if (after is None or n > after) and not o.deleted
            ]
        return rows if limit is None else rows[:limit]

    def edit_by_hand(self, number: str, **values: Any) -> None:
        """Someone edits an order in the ERP where no change capture sees it (no CDC event)."""
        with self._lock:
            self._orders[number].row.update(values)

    def order(self, number: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._orders.get(number)
            return dict(found.row) if found and not found.deleted else None

    # drift (--drift) ---------------------------------------------------------------------------
    def plan_drift(self, case: DriftCase) -> None:
        """A person will edit or delete the order of ``case.quote_id`` once it is confirmed
        (between confirmation and shipment), with the change data capture the ERP emits."""
        if case.quote_id is None:
            raise ValueError(f"{case.case_id}: {case.kind} needs a quote")
        with self._lock:
            self._drift[case.quote_id] = case

    def hand_made_order(self, case: DriftCase) -> str:
        """A person keys in an order for ``case.customer_number``, with no quote and no deal:
        the ERP numbers it, captures it and ships it like any other. Returns its number."""
        with self._lock:
            number = f"SO-{len(self._orders) + 1:06d}"
            row = _order_row(
                number,
                case.customer_number,
                int(case.change.get("subtotal_minor", 10_000)),
                quote_id=None,
                quote_revision=None,
                crm_deal_id=None,
                customer_po=f"PHONE-{case.case_id}",
                status="OPEN",
                credit_hold=False,
                currency="EUR",
            )
            now = self._clock()
            steps = self._lifecycle(now)
            self._orders[number] = _Order(row, now, steps, case, hand_made=True)
            heapq.heappush(self._due, (steps[0][0], number))
            self._change("sales_orders", "c", {"order_number": number}, None, dict(row))
            self._injected(case, number, total_minor=row["total_minor"])
            return number

    def _carry_out(self, order: _Order) -> None:
        """The planned drift of ``order``, now (under the lock)."""
        case, row = order.drift, order.row
        assert case is not None
        key = {"order_number": row["order_number"]}
        before = dict(row)
        if case.kind == "erp_order_deleted":
            order.steps.clear()  # nothing more happens to a deleted order
            order.deleted = True
            self._change("sales_orders", "d", key, before, None)
            self._injected(case, str(case.quote_id), order_number=row["order_number"])
            return
        pct = int(case.change.get("discount_pct", 10))
        sub = int(row["subtotal_minor"])
        new = sub - max(1, sub * pct // 100)
        row.update(
            subtotal_minor=new, tax_minor=new * 19 // 100, total_minor=new * 119 // 100,
            updated_at=None,
        )  # fmt: skip
        self._change("sales_orders", "u", key, before, dict(row))
        self._injected(
            case,
            str(case.quote_id),
            order_number=row["order_number"],
            subtotal_minor={"was": sub, "now": new},
        )

    def _injected(self, case: DriftCase, subject: str, **details: Any) -> None:
        self.recorded.add(
            "drift_injected",
            DriftInjected(case.case_id, case.kind, subject, round(self._wall(), 3), details),
        )


def _schedule_drift(order: _Order) -> None:
    """Put the order's drift between its confirmation and its shipment."""
    times = {status: at for at, status in order.steps}
    at = (times["CONFIRMED"] + times["SHIPPED"]) / 2
    order.steps.append((at, _DRIFT_STEP))
    order.steps.sort()
