"""The parity ledger: what the CRM promised, what the ERP did, what the CRM was told; and drift.

One ledger entry per quote (``q:<quote id>``) holds three parts, each folded from events the
pipeline already handles:

- ``promise``: the accepted revision as ordered (from our order commands): revision, net
  total, currency, lines, the create-order command's id;
- ``erp``: what the ERP reported (CDC and the sinks' answers): order number, status, amounts,
  lines, and when the worker learned of each status, shipment and invoice;
- ``told``: what the CRM was told (our update-deal commands, read back): the last status
  written and when each status was written, and the values written.

An ERP order that no quote correlates with has an entry of its own (``n:<ERP order number>``)
until a quote claims it. :func:`drift` compares the parts at a time ``now`` and returns the
findings, each with a deterministic id (:func:`contracts.reconciliation.finding_id`);
:func:`transitions` says which findings opened and which were resolved since the last look;
:func:`next_due` when, without an event, what an entry shows can change next.
Everything here is pure: entries are JSON-shaped dicts, times are seconds from a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts.errors import Reason
from contracts.ids import deterministic_event_id
from contracts.models import InvoiceEvent, OrderEvent, ShipmentEvent
from contracts.reconciliation import finding_id
from processors.domain.mismatch import order_mismatch
from processors.domain.writeback import DealWrite

__all__ = [
    "Finding",
    "Slas",
    "Transitions",
    "compare",
    "drift",
    "erp_facts",
    "fold_crm_shows",
    "fold_erp",
    "fold_promise",
    "fold_told",
    "merge_orphan",
    "next_due",
    "promise_of",
    "transitions",
]

#: ERP statuses the deal must show once the ERP has them: the order is no longer going ahead.
STOPPED = ("CANCELLED", "ON_CREDIT_HOLD")
#: Fulfilment statuses, by how far the order went: a later one reported covers an earlier one.
FULFILMENT_RANK = {"SHIPPED": 1, "INVOICED": 2, "PAID": 3}
_SHIPPED = frozenset({"SHIPPED", "IN_TRANSIT", "DELIVERED"})
_INVOICED = {"ISSUED": "INVOICED", "OVERDUE": "INVOICED", "PARTIALLY_PAID": "INVOICED"}
ORDER_DELETED = "OrderDeleted"
"""The event type of an ERP order row deleted (``connectors/mappings/erp/sales_orders.yaml``)."""
_AMOUNTS = ("total", "subtotal", "tax_total", "shipping_total")


@dataclass(frozen=True)
class Slas:
    """How long the ERP may take to create an order, and the worker to tell the deal."""

    order_s: float
    writeback_s: float


@dataclass(frozen=True)
class Finding:
    """One drift: its id, kind (a reason code), subject (quote id, order number or deal id),
    what differs, and what ``reconcile repair`` re-drives for it (None: a person decides)."""

    finding_id: str
    kind: Reason
    subject: str
    details: dict[str, Any] = field(default_factory=dict)
    repair: dict[str, Any] | None = None


@dataclass(frozen=True)
class Transitions:
    """What changed since the last look: findings opened, findings resolved, and what is open."""

    opened: list[Finding]
    resolved: list[tuple[str, Mapping[str, Any]]]
    open: dict[str, Any]


# -- folding ----------------------------------------------------------------------------------
def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _lines(lines: list[Any]) -> dict[str, dict[str, Any]]:
    return {
        str(line.line_number): {
            "sku": line.sku,
            "product_id": line.product_id,
            "quantity": _text(line.quantity),
        }
        for line in lines
    }


def promise_of(command: OrderEvent) -> dict[str, Any]:
    """What one order command (create, amend or cancel) promises the ERP will hold."""
    order = command.payload
    promise: dict[str, Any] = {
        "revision": order.quote_revision or 0,
        "status": "cancelled" if order.status == "CANCELLED" else "requested",
        "total": _text(order.total),
        "tax_total": _text(order.tax_total),
        "currency": order.currency,
        "lines": _lines(order.lines),
    }
    if command.event_type == "OrderRequested":
        promise["create_event_id"] = command.event_id
    return promise


def fold_promise(
    entry: Mapping[str, Any] | None,
    state: Mapping[str, Any],
    promise: Mapping[str, Any],
    partition: int,
    now: float,
) -> dict[str, Any]:
    """The quote's entry after a durable order command (its order state, see
    ``processors.domain.quotes.order_state_of``, and its :func:`promise_of`): the newest
    revision's promise is kept (a cancellation of the same revision wins), with the
    create-order's id and the time the first one became durable."""
    current = dict(entry or {})
    new = {**promise, "at": now}
    old = current.get("promise")
    if old is not None:
        rank_new = (int(new["revision"]), new["status"] == "cancelled")
        rank_old = (int(old["revision"]), old["status"] == "cancelled")
        if rank_new < rank_old:
            return current
        if rank_new == rank_old:
            return current  # the same command read back again
        if old.get("create_event_id") and not new.get("create_event_id"):
            new["create_event_id"] = old["create_event_id"]
        if new["status"] == "cancelled" and rank_new[0] == rank_old[0]:
            new = {**old, "status": "cancelled", "at": now}  # a cancellation has no amounts
        new["first_at"] = old.get("first_at", old["at"])
    else:
        new["first_at"] = now
    current.update(
        quote_id=state["quote_id"],
        account_id=state["account_id"],
        order_id=state["order_id"],
        deal_id=state.get("deal_id") or current.get("deal_id"),
        correlation_id=state.get("correlation_id"),
        partition=partition,
        promise=new,
        updated_at=now,
    )
    return current


def _changed_at(event: OrderEvent | ShipmentEvent | InvoiceEvent) -> str:
    return (event.source.changed_at or event.occurred_at).isoformat()


def erp_facts(event: OrderEvent | ShipmentEvent | InvoiceEvent, ours: bool) -> dict[str, Any]:
    """What one ERP change says about its order. ``ours``: the sinks' report of our own call
    (origin = ours), which echoes our request: its status and number count, its amounts not."""
    facts: dict[str, Any] = {"number": event.payload.erp_order_number, "at": _changed_at(event)}
    if isinstance(event, OrderEvent):
        order = event.payload
        if event.event_type == ORDER_DELETED:
            facts["deleted"] = True
            return facts
        if order.status not in (None, "UNKNOWN"):
            facts["status"] = order.status
        if not ours:
            facts["revision"] = order.quote_revision
            facts["currency"] = order.currency
            for name in _AMOUNTS:
                facts[name] = _text(getattr(order, name))
            if order.lines:
                facts["lines"] = _lines(order.lines)
    elif isinstance(event, ShipmentEvent):
        if event.payload.status in _SHIPPED:
            facts["fulfilment"] = "SHIPPED"
    else:
        status = event.payload.status or ""
        fulfilment = "PAID" if status == "PAID" else _INVOICED.get(status)
        if fulfilment:
            facts["fulfilment"] = fulfilment
    return {k: v for k, v in facts.items() if v is not None}


def fold_erp(erp: Mapping[str, Any] | None, facts: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The ERP part after one change: the newest status by change time, amounts and lines as
    last reported, and when the worker first learned of each status and fulfilment step."""
    out = dict(erp or {"first_seen": now})
    learned = dict(out.get("learned") or {})
    if facts.get("number"):
        out["number"] = facts["number"]
    if facts.get("deleted"):
        out["deleted"] = True
    status = facts.get("status")
    if status is not None and str(facts["at"]) >= str(out.get("status_at") or ""):
        out["status"], out["status_at"] = status, facts["at"]
        if status in STOPPED:
            learned.setdefault(status, now)
    if status in FULFILMENT_RANK:
        learned.setdefault(status, now)
    fulfilment = facts.get("fulfilment")
    if fulfilment is not None:
        learned.setdefault(fulfilment, now)
    for name in ("revision", "currency", *_AMOUNTS):
        if facts.get(name) is not None:
            out[name] = facts[name]
    if facts.get("lines"):
        out["lines"] = {**(out.get("lines") or {}), **facts["lines"]}
    if out.get("status") not in STOPPED:
        # the order went on: a later hold or cancellation is a new fact to report
        for stopped in STOPPED:
            learned.pop(stopped, None)
    out["learned"] = learned
    return out


def fold_told(told: Mapping[str, Any] | None, write: DealWrite, now: float) -> dict[str, Any]:
    """What the CRM was told after one durable update-deal command, which wrote ``write``."""
    out = dict(told or {})
    at = dict(out.get("at") or {})
    values = {**(out.get("values") or {}), **write.values}
    status = write.status
    if status:
        out["last"] = status
        at[status] = now
    out["at"], out["values"] = at, values
    return out


def fold_crm_shows(
    shows: Mapping[str, Any] | None, event: OrderEvent, fields: list[str]
) -> dict[str, Any]:
    """The values a CRM deal change reported for ERP-owned ``fields``."""
    dumped = event.payload.model_dump(mode="json")
    return {**(shows or {}), **{f: dumped.get(f) for f in fields if dumped.get(f) is not None}}


def merge_orphan(entry: Mapping[str, Any], orphan: Mapping[str, Any]) -> dict[str, Any]:
    """A quote's entry after it claimed an ERP order first seen without a quote: what the ERP
    reported then is the quote's ERP part (the first-learned times kept)."""
    out = dict(entry)
    theirs, ours = dict(orphan.get("erp") or {}), dict(entry.get("erp") or {})
    if not ours:
        out["erp"] = theirs
        return out
    merged = {**theirs, **ours}
    merged["learned"] = {**(theirs.get("learned") or {}), **(ours.get("learned") or {})}
    firsts = [float(e["first_seen"]) for e in (theirs, ours) if e.get("first_seen") is not None]
    if firsts:
        merged["first_seen"] = min(firsts)
    if str(theirs.get("status_at") or "") > str(ours.get("status_at") or ""):
        merged["status"], merged["status_at"] = theirs.get("status"), theirs.get("status_at")
    out["erp"] = merged
    return out


# -- drift ------------------------------------------------------------------------------------
def _told_since(told: Mapping[str, Any], status: str, since: float) -> bool:
    return told.get("last") == status or float((told.get("at") or {}).get(status, -1)) >= since


def _stop_untold(erp: Mapping[str, Any], told: Mapping[str, Any]) -> tuple[str, float] | None:
    """(the hold or cancellation, when it was learned) the deal was not told of since."""
    status, learned = erp.get("status"), erp.get("learned") or {}
    if status not in STOPPED or status not in learned:
        return None
    since = float(learned[status])
    return None if _told_since(told, status, since) else (str(status), since)


def _fulfilment_untold(erp: Mapping[str, Any], told: Mapping[str, Any]) -> tuple[str, float] | None:
    """(the furthest fulfilment step, when the first was learned) when the deal was told of
    none as far (a later step written covers an earlier one)."""
    learned = erp.get("learned") or {}
    steps = [(FULFILMENT_RANK[s], s, float(t)) for s, t in learned.items() if s in FULFILMENT_RANK]
    if not steps:
        return None
    rank, status, _ = max(steps)
    told_ranks = [FULFILMENT_RANK.get(s, 0) for s in (told.get("at") or {})]
    if max(told_ranks, default=0) >= rank:
        return None
    return status, min(t for _r, _s, t in steps)


Clock = tuple[float, float]
"""An SLA clock :func:`drift` waits on, as (since, SLA): once the SLA has passed since
``since``, a finding opens."""


def drift(entry: Mapping[str, Any], now: float, slas: Slas) -> list[Finding]:
    """Every drift an entry shows at ``now``; an empty list when the systems agree."""
    return _look(entry, now, slas)[0]


def compare(
    entry: Mapping[str, Any], now: float, slas: Slas, ttl_s: float
) -> tuple[list[Finding], float | None]:
    """:func:`drift` at ``now``, and :func:`next_due` of the entry once stored with those
    findings open: one look at the entry for both."""
    found, clocks = _look(entry, now, slas)
    return found, _due(clocks, not found, entry.get("updated_at"), now, ttl_s)


def _look(entry: Mapping[str, Any], now: float, slas: Slas) -> tuple[list[Finding], list[Clock]]:
    """(the drift ``entry`` shows at ``now``, the SLA clocks whose passing opens a finding)."""
    erp = entry.get("erp") or {}
    quote_id = entry.get("quote_id")
    found: list[Finding] = []
    clocks: list[Clock] = []
    if not quote_id:
        number = str(erp.get("number") or entry.get("number") or "")
        if number and now - float(erp.get("first_seen", now)) >= slas.order_s:
            kind = Reason.RECON_ORDER_WITHOUT_QUOTE
            details = {k: erp.get(k) for k in ("status", "total", "currency") if erp.get(k)}
            found.append(Finding(finding_id(kind, number), kind, number, details))
        if number and "first_seen" in erp:
            clocks.append((float(erp["first_seen"]), slas.order_s))
        return found, clocks
    quote_id = str(quote_id)
    promise: Mapping[str, Any] = entry.get("promise") or {}
    going_ahead = promise.get("status") == "requested"
    if going_ahead and (not erp.get("number") or erp.get("deleted")):
        first_at = float(promise["first_at"])
        clocks.append((first_at, slas.order_s))
        if now - first_at >= slas.order_s:
            kind = Reason.RECON_ORDER_MISSING
            repair = None
            details = {"revision": promise["revision"], "requested_at": promise["first_at"]}
            if erp.get("deleted"):
                # re-driving the create-order would get the ERP's remembered answer for its
                # Idempotency-Key, not a new order: a person decides
                details.update(deleted_in_erp=True, erp_order_number=erp.get("number"))
            elif promise.get("create_event_id"):
                repair = {"command": "create-order", "event_id": promise["create_event_id"]}
            found.append(Finding(finding_id(kind, quote_id), kind, quote_id, details, repair))
    elif going_ahead:
        revision = int(promise["revision"])
        differs = order_mismatch(promise, erp)
        if erp.get("revision") != revision:
            # compared once the amended order may have landed
            at = float(promise["at"])
            if differs:
                clocks.append((at, slas.order_s))
            if not now - at >= slas.order_s:
                differs = {}
        if differs:
            kind = Reason.RECON_ORDER_MISMATCH
            fid = finding_id(kind, quote_id, str(revision))
            details = {"revision": revision, "erp_order_number": erp.get("number"), **differs}
            found.append(Finding(fid, kind, quote_id, details))
    deal = entry.get("deal_id")
    if deal and erp:
        _writeback_drift(entry, str(deal), quote_id, now, slas, found, clocks)
    return found, clocks


def _writeback_drift(
    entry: Mapping[str, Any],
    deal: str,
    quote_id: str,
    now: float,
    slas: Slas,
    found: list[Finding],
    clocks: list[Clock],
) -> None:
    erp, told = entry["erp"], entry.get("told") or {}
    stopped = _stop_untold(erp, told)
    if stopped is not None:
        status, since = stopped
        clocks.append((since, slas.writeback_s))
        if now - since >= slas.writeback_s:
            kind = Reason.RECON_DEAL_STILL_OPEN
            fid = finding_id(kind, quote_id, status)
            details = {"erp_status": status, "deal_id": deal, "deal_shows": told.get("last")}
            repair = _writeback_plan(entry, fid, status)
            found.append(Finding(fid, kind, quote_id, details, repair))
    owed = _fulfilment_untold(erp, told)
    if owed is not None:
        status, since = owed
        clocks.append((since, slas.writeback_s))
        if now - since >= slas.writeback_s:
            kind = Reason.RECON_FULFILMENT_NOT_REPORTED
            fid = finding_id(kind, quote_id, status)
            details = {"erp_status": status, "deal_id": deal, "deal_shows": told.get("last")}
            found.append(Finding(fid, kind, quote_id, details, _writeback_plan(entry, fid, status)))
    shows = entry.get("crm_shows") or {}
    written = told.get("values") or {}
    for name in sorted(shows):
        if name in written and shows[name] != written[name]:
            kind = Reason.RECON_CRM_VALUE_OVERWRITTEN
            fid = finding_id(kind, deal, name)
            details = {
                "field": name,
                "crm": shows[name],
                "written": written[name],
                "quote": quote_id,
            }
            found.append(Finding(fid, kind, deal, details))


def _writeback_plan(entry: Mapping[str, Any], fid: str, status: str) -> dict[str, Any]:
    return {"command": "update-deal", "event_id": deterministic_event_id("repair", fid, status)}


def transitions(open_: Mapping[str, Any] | None, found: list[Finding], now: float) -> Transitions:
    """Findings opened and resolved between the open ones and those ``found`` now."""
    if not open_ and not found:
        return Transitions([], [], {})  # the systems agree, as they did: most entries, mostly
    before = dict(open_ or {})
    current = {f.finding_id: f for f in found}
    opened = [f for fid, f in current.items() if fid not in before]
    resolved = [(fid, stored) for fid, stored in before.items() if fid not in current]
    after = {
        fid: before.get(fid) or {"kind": str(f.kind), "subject": f.subject, "opened_at": now}
        for fid, f in current.items()
    }
    return Transitions(opened, resolved, after)


# -- when to look again -----------------------------------------------------------------------
def next_due(entry: Mapping[str, Any], now: float, slas: Slas, ttl_s: float) -> float | None:
    """When ``entry`` (with its ``open`` findings as of ``now``) must be compared again if no
    event touches it first; None: only an event can change what it shows.

    That is the earliest SLA deadline still ahead whose passing opens a finding, or, when
    nothing is open, the time it may be forgotten (``updated_at + ttl_s``). :func:`drift` only
    finds more as time passes (each of its rules waits for an SLA), so until then it finds what
    it finds at ``now``: a sweep needs to look at an entry only once it is due.
    """
    clocks = _look(entry, now, slas)[1]
    return _due(clocks, not entry.get("open"), entry.get("updated_at"), now, ttl_s)


def _due(
    clocks: list[Clock], agrees: bool, updated_at: Any, now: float, ttl_s: float
) -> float | None:
    due = [since + sla for since, sla in clocks if now - since < sla]
    if agrees and updated_at is not None:
        due.append(float(updated_at) + ttl_s)
    return min(due, default=None)
