"""The HTTP contract the sinks call, as pure functions: command → request, answer → outcome.

============================  =======================================  =====================
command topic                 request                                  outcome event
============================  =======================================  =====================
commands.erp.create-order     ``POST {erp}/orders`` (the order)        OrderCreated
commands.erp.cancel-order     ``POST {erp}/orders/{number}/cancel``    OrderCancelled
commands.erp.amend-order      ``PATCH {erp}/orders/{number}``          OrderAmended
commands.crm.update-deal      ``PATCH {crm}/deals/{crm_record_id}``    (none)
============================  =======================================  =====================

Every request carries ``Idempotency-Key: <command event_id>`` and, when a token is configured,
``Authorization: Bearer <token>``. Bodies are the command's order payload as JSON. The ERP
answers ``{"order_number": ..., "status": ...}``; the outcome is an :class:`OrderEvent` on
``canonical.order.v1`` with ``erp_order_number`` set, ``correlation_id`` of the command,
``causation_id`` = the command's event_id and a deterministic event_id derived from it. The
CRM's answer is not read: no outcome reports it (:data:`REPORTED_KINDS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from contracts import InterlockError, Order, OrderEvent, Reason, Source, deterministic_event_id
from contracts.models import OrderStatus

__all__ = [
    "COMMAND_TOPICS",
    "REPORTED_KINDS",
    "CommandKind",
    "HttpCall",
    "build_request",
    "outcome_event",
]

CommandKind = Literal["create-order", "cancel-order", "amend-order", "update-deal"]
COMMAND_TOPICS: dict[str, CommandKind] = {
    "commands.erp.create-order": "create-order",
    "commands.erp.cancel-order": "cancel-order",
    "commands.erp.amend-order": "amend-order",
    "commands.crm.update-deal": "update-deal",
}
_OUTCOMES = {
    "create-order": "OrderCreated",
    "cancel-order": "OrderCancelled",
    "amend-order": "OrderAmended",
}
#: The kinds whose answer an outcome event reports (an update-deal's answer is not read).
REPORTED_KINDS: frozenset[str] = frozenset(_OUTCOMES)
_STATUSES = frozenset(get_args(OrderStatus))


@dataclass(frozen=True)
class HttpCall:
    """One call to a target: which target, method, path, JSON body, idempotency key."""

    target: Literal["erp", "crm"]
    method: str
    path: str
    body: dict[str, Any]
    idempotency_key: str


def _need(value: str | None, field: str, command: OrderEvent) -> str:
    if not value:
        raise InterlockError(
            f"command {command.event_id} ({command.event_type}) has no {field}",
            reason=Reason.VALIDATION_MISSING_FIELD,
        )
    return value


def build_request(kind: CommandKind, command: OrderEvent) -> HttpCall:
    """The call a command makes."""
    order = command.payload
    body = order.model_dump(mode="json", exclude_none=True)
    key = command.event_id
    if kind == "create-order":
        return HttpCall("erp", "POST", "/orders", body, key)
    if kind == "cancel-order":
        number = _need(order.erp_order_number, "erp_order_number", command)
        reason = {"reason": order.status_reason} if order.status_reason else {}
        return HttpCall("erp", "POST", f"/orders/{number}/cancel", reason, key)
    if kind == "amend-order":
        number = _need(order.erp_order_number, "erp_order_number", command)
        return HttpCall("erp", "PATCH", f"/orders/{number}", body, key)
    deal = _need(order.crm_record_id, "crm_record_id (the deal id)", command)
    return HttpCall("crm", "PATCH", f"/deals/{deal}", body, key)


def outcome_event(
    kind: CommandKind, command: OrderEvent, answer: Any, now: datetime
) -> OrderEvent | None:
    """The canonical event that reports what the target did, or ``None`` (CRM updates)."""
    event_type = _OUTCOMES.get(kind)
    if event_type is None:
        return None
    answer = answer if isinstance(answer, dict) else {}
    order: Order = command.payload
    number = answer.get("order_number") or order.erp_order_number
    status = answer.get("status") or ("CANCELLED" if kind == "cancel-order" else "CONFIRMED")
    payload = _reported(order, number, status)
    changed = ["erp_order_number", "status"]
    return OrderEvent(
        event_id=deterministic_event_id("sink-outcome", command.event_id),
        event_type=event_type,
        source=Source(system="erp", vendor="erp-api", record_id=str(number or order.order_id)),
        correlation_id=command.correlation_id,
        causation_id=command.event_id,
        occurred_at=now,
        ingested_at=now,
        origin="interlock",
        changed_fields=changed,
        payload=payload,
    )


def _reported(order: Order, number: Any, status: Any) -> Order:
    """``order`` with the target's order number and status, validated.

    The rest of the order is the command's, valid already: when the two values are ones the
    model takes as they are (a ``str`` or ``None``, a known status) only they are checked;
    anything else goes through the model's full validation, which raises its usual error.
    """
    payload = order.model_copy(update={"erp_order_number": number, "status": status})
    if (number is None or type(number) is str) and type(status) is str and status in _STATUSES:
        return payload
    return Order.model_validate(payload.model_dump())
