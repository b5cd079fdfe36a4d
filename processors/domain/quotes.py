"""Quote → order: validation with reason codes, the decision per quote event, order commands.

The decision depends only on the quote event, what was already ordered for the quote (its
order state), the account state and, optionally, the product catalog. Command ids are derived
from the quote id and revision, so a redelivered or replayed quote yields the same ids.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from pydantic import BaseModel

from contracts.conversion import event_builder
from contracts.errors import Reason, ValidationError
from contracts.ids import event_id_after
from contracts.models import Address, Order, OrderEvent, OrderLine, QuoteEvent, QuoteLine, Source

__all__ = [
    "CLOSED_STATUSES",
    "LINE_EVENT_TYPES",
    "CommandKind",
    "Issue",
    "QuoteDecision",
    "build_order_command",
    "decide_quote",
    "fold_lines",
    "fold_order_state",
    "not_linked",
    "order_id_for",
    "order_state_of",
    "validate_quote",
    "with_assembled_lines",
    "with_erp_order_number",
]

CommandKind = Literal["create-order", "amend-order", "cancel-order"]
Action = Literal[
    "create",
    "amend",
    "cancel",
    "duplicate",
    "stale",
    "park",
    "invalid",
    "ignore",
    "pending_revision",
]
#: Quote statuses that end a quote: an order already requested for it must be cancelled.
CLOSED_STATUSES = frozenset({"WITHDRAWN", "REJECTED", "EXPIRED"})
_STATUS_RANK = {"requested": 0, "cancelled": 1}
#: Events that carry one line of a quote on its own (HubSpot line items), not the whole quote.
LINE_EVENT_TYPES = frozenset({"QuoteLineChanged", "QuoteLineDeleted"})


@dataclass(frozen=True, slots=True)
class Issue:
    """Why a quote cannot become an order: a stable code, the reason class, and a message."""

    code: str
    reason: Reason
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True, slots=True)
class QuoteDecision:
    """What to do with one quote event."""

    action: Action
    command: OrderEvent | None = None
    kind: CommandKind | None = None
    issues: list[Issue] = field(default_factory=list)


_order_id = event_id_after("order")


def order_id_for(quote_id: str) -> str:
    """The canonical order id of a quote: one order per quote, amended across revisions."""
    return _order_id(quote_id)


def fold_lines(state: Mapping[str, Any] | None, event: QuoteEvent) -> dict[str, Any] | None:
    """A quote's assembled lines after one line event; None when the event changes nothing.

    ``state`` is ``{"revision": r, "lines": {"<line number>": {field: JSON value}}}``. A line
    event sets the fields it carries on its line (a property change carries one), or deletes
    the line; an event of an older revision than the state is stale and changes nothing.
    """
    quote = event.payload
    if state is not None and quote.revision < int(state["revision"]):
        return None
    lines: dict[str, dict[str, Any]] = dict(state["lines"]) if state else {}
    for line in quote.lines:
        key = str(line.line_number)
        if event.event_type == "QuoteLineDeleted":
            lines.pop(key, None)
        else:
            lines[key] = {**lines.get(key, {}), **line.model_dump(mode="json", exclude_none=True)}
    folded = {"revision": quote.revision, "lines": lines}
    return None if folded == state else folded


def with_assembled_lines(event: QuoteEvent, state: Mapping[str, Any] | None) -> QuoteEvent:
    """An accepted quote that came without lines, completed with its assembled lines.

    HubSpot sends a deal's line items as events of their own and the deal's acceptance as a
    one-property change; the accepted quote is ordered with the newest lines known for it.
    A quote with lines of its own, or with none assembled, is returned unchanged.
    """
    quote = event.payload
    if quote.status != "ACCEPTED" or quote.lines or not state or not state["lines"]:
        return event
    lines = [
        QuoteLine.model_validate(values)
        for _, values in sorted(state["lines"].items(), key=lambda item: int(item[0]))
    ]
    return event.model_copy(update={"payload": quote.model_copy(update={"lines": lines})})


def _missing(code: str, message: str) -> Issue:
    return Issue(code, Reason.VALIDATION_MISSING_FIELD, message)


def _failed(code: str, message: str) -> Issue:
    return Issue(code, Reason.VALIDATION_FAILED, message)


def not_linked(account_id: str) -> Issue:
    """The issue of a quote whose account has no ERP customer (yet)."""
    return _failed("QUOTE_ACCOUNT_NOT_LINKED", f"account {account_id} has no ERP customer")


def validate_quote(
    event: QuoteEvent,
    account: Mapping[str, Any],
    known_product: Callable[[str], bool] | None = None,
) -> list[Issue]:
    """Every reason why an accepted quote cannot be ordered for ``account`` (empty: valid)."""
    quote = event.payload
    issues: list[Issue] = []
    if quote.ship_to is None and not account.get("shipping_address"):
        issues.append(_missing("QUOTE_MISSING_SHIP_TO", "no ship-to on the quote or account"))
    if not (quote.payment_terms or account.get("payment_terms")):
        issues.append(_missing("QUOTE_MISSING_PAYMENT_TERMS", "no payment terms"))
    if not quote.lines:
        issues.append(_missing("QUOTE_NO_LINES", "the quote has no lines"))
    for line in quote.lines:
        if line.quantity is None or line.quantity <= 0:
            issues.append(
                _failed("QUOTE_BAD_QUANTITY", f"line {line.line_number} quantity {line.quantity}")
            )
        product = line.product_id or line.sku
        if not product or (known_product is not None and not known_product(product)):
            issues.append(
                _failed("QUOTE_UNKNOWN_PRODUCT", f"line {line.line_number} product {product!r}")
            )
    currency = account.get("currency")
    if quote.currency and currency and quote.currency != currency:
        issues.append(
            _failed("QUOTE_CURRENCY_MISMATCH", f"quote in {quote.currency}, account in {currency}")
        )
    if not (account.get("erp_customer_number") or quote.erp_customer_number):
        issues.append(not_linked(quote.account_id))
    if account.get("credit_hold"):
        issues.append(
            _failed("QUOTE_ACCOUNT_CREDIT_HOLD", f"account {quote.account_id} is on credit hold")
        )
    return issues


def build_order_command(
    kind: CommandKind, event: QuoteEvent, account: Mapping[str, Any], origin: str = "interlock"
) -> OrderEvent:
    """The ERP order command caused by a quote event, with ids derived from the quote.

    Built as the Avro-shaped dict and wrapped by the contracts' trusted builder: every value is
    either copied from the already validated quote or a constant, and the account-derived ones
    are checked here (the encoder type-checks the whole command again on write).
    """
    quote = event.payload
    ship_to = quote.ship_to or _address(account.get("shipping_address"))
    bill_to = quote.bill_to or _address(account.get("billing_address"))
    cancel = kind == "cancel-order"
    order = dict(ORDER_DEFAULTS)
    order.update(
        order_id=order_id_for(quote.quote_id),
        account_id=quote.account_id,
        quote_id=quote.quote_id,
        quote_revision=quote.revision,
        crm_record_id=quote.crm_deal_id,
        erp_customer_number=_text(account.get("erp_customer_number")) or quote.erp_customer_number,
        customer_po_number=quote.customer_po_number,
        status="CANCELLED" if cancel else "REQUESTED",
        status_reason=quote.status if cancel else None,
        owner=quote.owner,
        currency=quote.currency or _text(account.get("currency")),
        lines=[{**line.__dict__, **_ORDER_LINE_EXTRA} for line in quote.lines],
        subtotal=quote.subtotal,
        discount_total=quote.discount_total,
        tax_total=quote.tax_total,
        total=quote.total,
        payment_terms=quote.payment_terms or _text(account.get("payment_terms")),
        bill_to=bill_to.__dict__.copy() if bill_to is not None else None,
        ship_to=ship_to.__dict__.copy() if ship_to is not None else None,
        requested_date=quote.requested_date,
        ordered_at=quote.accepted_at,
    )
    business_time = quote.accepted_at if not cancel and quote.accepted_at else event.occurred_at
    source = event.source
    command = build_order_event(
        {
            "event_id": _COMMAND_IDS[kind](quote.quote_id, str(quote.revision)),
            "event_type": _EVENT_TYPES[kind],
            "entity": "order",
            "schema_version": OrderEvent.SCHEMA_VERSION,
            "source": {
                **_SOURCE_DEFAULTS,
                "system": "crm",
                "vendor": source.vendor,
                "instance": source.instance,
                "record_id": quote.crm_record_id or quote.quote_id,
                "changed_at": source.changed_at,
            },
            "correlation_id": event.correlation_id or quote.quote_id,
            "causation_id": event.event_id,
            "occurred_at": business_time,
            "ingested_at": event.ingested_at,
            "origin": origin,
            "changed_fields": [],
            "payload": order,
        }
    )
    return cast(OrderEvent, command)


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    return {
        name: info.get_default(call_default_factory=True)
        for name, info in model.model_fields.items()
    }


ORDER_DEFAULTS = _defaults(Order)
_SOURCE_DEFAULTS = _defaults(Source)
_ORDER_LINE_EXTRA = {
    name: info.get_default(call_default_factory=True)
    for name, info in OrderLine.model_fields.items()
    if name not in QuoteLine.model_fields
}
_EVENT_TYPES: dict[str, str] = {
    "create-order": "OrderRequested",
    "amend-order": "OrderAmendRequested",
    "cancel-order": "OrderCancelRequested",
}
_COMMAND_IDS = {kind: event_id_after(kind) for kind in _EVENT_TYPES}
"""Per command kind, ``(quote id, revision) -> deterministic_event_id(kind, ...)``."""
build_order_event = event_builder("order")


def _text(value: Any) -> str | None:
    """An account-state value that must be a string (None when absent)."""
    if value is None or isinstance(value, str):
        return value
    raise ValidationError(
        f"account state holds {type(value).__name__} where text is expected",
        reason=Reason.VALIDATION_FAILED,
    )


def _address(value: Any) -> Address | None:
    return Address.model_validate(value) if value else None


def decide_quote(
    event: QuoteEvent,
    order_state: Mapping[str, Any] | None,
    account: Mapping[str, Any] | None,
    known_product: Callable[[str], bool] | None = None,
    origin: str = "interlock",
    *,
    wait_for_link: bool = True,
) -> QuoteDecision:
    """Create, amend or cancel the quote's order, or say why not (duplicate, park, invalid...).

    ``order_state`` is what was requested for this quote so far (see :func:`fold_order_state`);
    ``account`` is the merged account state, None when the account is not known yet. A quote
    parks while its account is unknown or (with ``wait_for_link``) not linked to the ERP.
    """
    quote = event.payload
    requested = order_state is not None and order_state.get("status") == "requested"
    ordered_rev = int(order_state["revision"]) if order_state else -1
    if quote.status in CLOSED_STATUSES:
        if requested and quote.revision >= ordered_rev:
            return _command("cancel", "cancel-order", event, account or {}, origin)
        return QuoteDecision("ignore")
    if quote.status != "ACCEPTED":
        if requested and quote.revision > ordered_rev:
            return QuoteDecision("pending_revision")
        return QuoteDecision("ignore")
    if order_state is not None and quote.revision == ordered_rev:
        return QuoteDecision("duplicate")
    if order_state is not None and quote.revision < ordered_rev:
        return QuoteDecision("stale")
    if account is None:
        return QuoteDecision("park")
    if wait_for_link and not (account.get("erp_customer_number") or quote.erp_customer_number):
        # Canonical topics are not ordered with each other: the ERP side of the account may
        # still be on its way. Wait like for a missing account; the timeout says not linked.
        return QuoteDecision("park", issues=[not_linked(quote.account_id)])
    issues = validate_quote(event, account, known_product)
    if issues:
        return QuoteDecision("invalid", issues=issues)
    if requested:
        return _command("amend", "amend-order", event, account, origin)
    return _command("create", "create-order", event, account, origin)


def _command(
    action: Action, kind: CommandKind, event: QuoteEvent, account: Mapping[str, Any], origin: str
) -> QuoteDecision:
    return QuoteDecision(action, build_order_command(kind, event, account, origin), kind)


def order_state_of(command: OrderEvent) -> dict[str, Any]:
    """What one order command says about its quote's order (see :func:`fold_order_state`)."""
    order = command.payload
    return {
        "quote_id": order.quote_id,
        "order_id": order.order_id,
        "account_id": order.account_id,
        "revision": order.quote_revision or 0,
        "status": "cancelled" if order.status == "CANCELLED" else "requested",
        "correlation_id": command.correlation_id,
        "deal_id": order.crm_record_id,
        "event_id": command.event_id,
    }


def fold_order_state(
    current: Mapping[str, Any] | None, command: OrderEvent | Mapping[str, Any]
) -> dict[str, Any]:
    """The quote's order state after a durable order command (create, amend or cancel).

    ``command`` is the command or its :func:`order_state_of`. Commands of one quote may be read
    back from different topics in any order, so the state is the maximum by (revision,
    cancelled-after-requested): folding is order-independent.
    """
    candidate = order_state_of(command) if isinstance(command, OrderEvent) else dict(command)
    if current is None:
        return candidate
    rank_new = (int(candidate["revision"]), _STATUS_RANK[str(candidate["status"])])
    rank_old = (int(current["revision"]), _STATUS_RANK[str(current["status"])])
    if rank_new > rank_old:
        merged = {**current, **candidate}
        merged["deal_id"] = candidate["deal_id"] or current.get("deal_id")
        return merged
    return dict(current)


def with_erp_order_number(command: OrderEvent, number: str) -> OrderEvent:
    """An amend or cancel command addressed to the ERP order it compensates.

    The command keeps its event id: it is the same logical command, only now deliverable.
    """
    payload = command.payload.model_copy(update={"erp_order_number": number})
    return command.model_copy(update={"payload": payload})
