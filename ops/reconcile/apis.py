"""``reconcile check --against-apis``: compare the systems' own records, not their events.

Some drift never produces an event: a deal deleted in the CRM, an order edited in the ERP
where no change capture sees it. This pages through the ERP's orders
(``GET {erp}/orders?after=<order number>&limit=N``) and the CRM's deals
(``GET {crm}/deals?after=<deal id>&limit=N``), each a JSON list ordered by its cursor, a page
shorter than ``limit`` being the last, and compares them with what the CRM promised the ERP:
the order commands on ``commands.erp.create-order``, ``amend-order`` and ``cancel-order`` (a
quote that was never ordered, e.g. one dead-lettered as invalid, promised nothing). An ERP
order row carries ``order_number``, ``quote_id``, ``quote_revision``, ``crm_deal_id``,
``currency`` and its amounts, as decimals
(``total``, ``tax_total``, ``subtotal``) or in minor units (``total_minor``, ``tax_minor``,
``subtotal_minor``); a deal carries its ``id`` and the fields the sinks' write-backs set, by
the names they send them (``status``, ``erp_order_number``, ``status_reason``, ...).

What the CRM was told is read too (``commands.crm.update-deal``): a deal that shows another
value for an ERP-owned field than the last write-back set, once that write-back is older than
``INTERLOCK_PROCESSORS__RECONCILE_WRITEBACK_SLA_S``, is ``RECON_CRM_VALUE_OVERWRITTEN``: a
person edited it, or the CRM answered the write-back and never applied it (a lost write-back,
which no event reports).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from contracts.errors import Reason
from contracts.models import OrderEvent
from contracts.reconciliation import finding_id
from interlock.settings import Settings
from ops.reconcile.model import Finding
from processors.domain.writeback import written_values

__all__ = [
    "ApiClient",
    "Promise",
    "Told",
    "check_apis",
    "read_promises",
    "read_told",
    "sweep_apis",
    "told_of",
]

log = logging.getLogger(__name__)
_COMMANDS = ("commands.erp.create-order", "commands.erp.amend-order", "commands.erp.cancel-order")
_UPDATE_DEAL = "commands.crm.update-deal"


@dataclass(frozen=True)
class Promise:
    """The newest revision of a quote ordered from the ERP (closed: its order was cancelled)."""

    quote_id: str
    revision: int
    deal_id: str | None
    total: Decimal | None
    tax_total: Decimal | None
    currency: str | None
    accepted_at: datetime
    closed: bool = False


def promises_of(events: Iterable[Any]) -> dict[str, Promise]:
    """The newest revision ordered for each quote, from its order commands in any order."""
    out: dict[str, Promise] = {}
    for event in events:
        if not isinstance(event, OrderEvent) or not event.payload.quote_id:
            continue
        order = event.payload
        quote_id, revision = str(order.quote_id), order.quote_revision or 0
        cancelled = order.status == "CANCELLED"
        current = out.get(quote_id)
        if current is not None and (revision, cancelled) < (current.revision, current.closed):
            continue
        if cancelled and current is not None:
            out[quote_id] = Promise(**{**current.__dict__, "closed": True})
            continue
        out[quote_id] = Promise(
            quote_id,
            revision,
            order.crm_record_id or (current.deal_id if current else None),
            order.total,
            order.tax_total,
            order.currency,
            order.ordered_at or event.occurred_at,
            closed=cancelled,
        )
    return out


def read_promises(settings: Settings, prefix: str) -> dict[str, Promise]:
    """What the CRM promised the ERP: the order commands on their topics."""
    from contracts.serde import make_deserializer
    from interlock.serializers import registry_client
    from ops.dlq.store import read_topic

    decode = make_deserializer(registry=registry_client(settings)).decode
    events = []
    conf = settings.kafka.librdkafka()
    for topic in _COMMANDS:
        for record in read_topic(conf, f"{prefix}{topic}"):
            try:
                events.append(decode(record.value or b""))
            except Exception as exc:  # not a command we wrote; it promised nothing
                log.debug("skipped an undecodable record of %s: %s", topic, exc)
    return promises_of(events)


@dataclass(frozen=True)
class Told:
    """What the CRM was told about one deal: its ERP-owned fields as the write-backs left them,
    and when the newest write-back became durable."""

    deal_id: str
    quote_id: str | None
    values: Mapping[str, Any]
    at: datetime


def told_of(
    commands: Iterable[tuple[Any, datetime]], erp_owned: Callable[[str], bool] = lambda _: True
) -> dict[str, Told]:
    """What each deal was told, from its update-deal commands (with the time each became
    durable) in the order they were written: a write-back sets only the fields it changes."""
    out: dict[str, Told] = {}
    for event, at in commands:
        if not isinstance(event, OrderEvent) or not event.payload.crm_record_id:
            continue
        deal = str(event.payload.crm_record_id)
        written = {k: v for k, v in written_values(event).items() if erp_owned(k)}
        before = out.get(deal)
        if before is None:
            out[deal] = Told(deal, event.payload.quote_id, written, at)
            continue
        out[deal] = Told(
            deal,
            event.payload.quote_id or before.quote_id,
            {**before.values, **written},
            max(at, before.at),
        )
    return out


def read_told(settings: Settings, prefix: str) -> dict[str, Told]:
    """What the CRM was told: the update-deal commands on their topic, ERP-owned fields only
    (the ownership rules the processors use)."""
    from contracts.ownership import load_ownership
    from contracts.serde import make_deserializer
    from interlock.serializers import registry_client
    from ops.dlq.store import read_topic

    path = settings.processors.ownership_path
    policy = load_ownership(path) if path else load_ownership()
    decode = make_deserializer(registry=registry_client(settings)).decode
    commands = []
    for record in read_topic(settings.kafka.librdkafka(), f"{prefix}{_UPDATE_DEAL}"):
        try:
            event = decode(record.value or b"")
        except Exception as exc:  # not a command we wrote; it told nothing
            log.debug("skipped an undecodable record of %s: %s", _UPDATE_DEAL, exc)
            continue
        ms = record.timestamp_ms
        at = datetime.fromtimestamp(ms / 1000, UTC) if ms else datetime.now(UTC)
        commands.append((event, at))
    return told_of(commands, lambda name: policy.owner_of("order", name) == "erp")


class ApiClient:
    """Pages through the ERP's orders and the CRM's deals."""

    def __init__(self, erp_url: str, crm_url: str, settings: Settings, page_size: int) -> None:
        self.page_size = page_size
        self._erp = self._client(erp_url, settings.sinks.erp)
        self._crm = self._client(crm_url, settings.sinks.crm)

    @staticmethod
    def _client(url: str, target: Any) -> httpx.Client:
        headers = {}
        if target.token is not None:
            headers["Authorization"] = f"Bearer {target.token.get_secret_value()}"
        return httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=target.timeout_s)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._erp.close()
        self._crm.close()

    def _pages(
        self, client: httpx.Client, path: str, cursor: str, advance: Callable[[int], None]
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": self.page_size}
            if after is not None:
                params["after"] = after
            response = client.get(path, params=params)
            response.raise_for_status()
            page = response.json()
            if not isinstance(page, list):
                raise ValueError(f"{client.base_url}{path}: expected a JSON list")
            out.extend(page)
            advance(len(page))
            if len(page) < self.page_size:
                return out
            after = str(page[-1][cursor])

    def orders(self, advance: Callable[[int], None] = lambda n: None) -> list[dict[str, Any]]:
        return self._pages(self._erp, "/orders", "order_number", advance)

    def deals(self, advance: Callable[[int], None] = lambda n: None) -> list[dict[str, Any]]:
        return self._pages(self._crm, "/deals", "id", advance)


def _amount(row: Mapping[str, Any], name: str, minor: str) -> Decimal | None:
    try:
        if row.get(name) is not None:
            return Decimal(str(row[name]))
        if row.get(minor) is not None:
            return Decimal(int(row[minor])) / 100
    except (InvalidOperation, ValueError, TypeError):
        return None
    return None


def _net(row: Mapping[str, Any]) -> Decimal | None:
    total = _amount(row, "total", "total_minor")
    if total is None:
        return _amount(row, "subtotal", "subtotal_minor")
    return total - (_amount(row, "tax_total", "tax_minor") or 0)


def _cents(amount: Decimal) -> str:
    return str(amount.quantize(Decimal("0.01")))


def _finding(kind: Reason, subject: str, now: datetime, *detail: str, **details: Any) -> Finding:
    return Finding(finding_id(kind, subject, *detail), str(kind), subject, now, details=details)


def check_apis(
    promises: Mapping[str, Promise],
    orders: Iterable[Mapping[str, Any]],
    deals: Iterable[Mapping[str, Any]],
    now: datetime,
    order_sla: timedelta = timedelta(minutes=10),
    told: Mapping[str, Told] | None = None,
    writeback_sla: timedelta = timedelta(minutes=10),
) -> list[Finding]:
    """Drift between the accepted quotes, the ERP's orders, the CRM's deals and what the CRM
    was told (``told``: a deal's fields are compared once its last write-back is
    ``writeback_sla`` old, so a write-back still on its way is not drift)."""
    deals = list(deals)
    deal_ids = {str(d.get("id")) for d in deals}
    found: dict[str, Finding] = {}
    ordered: set[str] = set()

    def add(finding: Finding) -> None:
        found.setdefault(finding.finding_id, finding)

    for row in orders:
        number = str(row.get("order_number"))
        quote_id = row.get("quote_id")
        promise = promises.get(str(quote_id)) if quote_id else None
        deal = row.get("crm_deal_id") or (promise.deal_id if promise else None)
        cancelled = str(row.get("status") or "").upper() in ("CANCELLED", "REJECTED")
        if deal and str(deal) not in deal_ids and not cancelled:
            add(_finding(Reason.RECON_DEAL_MISSING, str(deal), now, erp_order_number=number,
                         quote_id=quote_id))  # fmt: skip
        if promise is None:
            add(_finding(Reason.RECON_ORDER_WITHOUT_QUOTE, number, now, quote_id=quote_id))
            continue
        ordered.add(promise.quote_id)
        revision = row.get("quote_revision")
        if promise.closed or cancelled or (revision is not None and revision != promise.revision):
            continue
        differs: dict[str, Any] = {}
        want = None if promise.total is None else promise.total - (promise.tax_total or 0)
        have = _net(row)
        if want is not None and have is not None and abs(want - have) > Decimal("0.005"):
            differs["net_total"] = {"quote": _cents(want), "erp": _cents(have)}
        currency = row.get("currency")
        if promise.currency and currency and promise.currency != currency:
            differs["currency"] = {"quote": promise.currency, "erp": currency}
        if differs:
            kind, rev = Reason.RECON_ORDER_MISMATCH, promise.revision
            add(_finding(kind, promise.quote_id, now, str(rev),
                         erp_order_number=number, revision=rev, **differs))  # fmt: skip
    for promise in promises.values():
        if promise.closed:
            continue
        if promise.deal_id and promise.deal_id not in deal_ids:
            add(_finding(Reason.RECON_DEAL_MISSING, promise.deal_id, now,
                         quote_id=promise.quote_id))  # fmt: skip
        if promise.quote_id not in ordered and now - promise.accepted_at >= order_sla:
            add(_finding(Reason.RECON_ORDER_MISSING, promise.quote_id, now,
                         revision=promise.revision))  # fmt: skip
    for deal in deals:
        said = (told or {}).get(str(deal.get("id")))
        if said is None or now - said.at < writeback_sla:
            continue
        for name, value in sorted(said.values.items()):
            if deal.get(name) != value:
                kind = Reason.RECON_CRM_VALUE_OVERWRITTEN
                add(_finding(kind, said.deal_id, now, name, field=name, crm=deal.get(name),
                             written=value, quote=said.quote_id))  # fmt: skip
    return sorted(found.values(), key=lambda f: (f.kind, f.subject))


def sweep_apis(
    settings: Settings,
    prefix: str,
    erp_url: str,
    crm_url: str,
    page_size: int = 200,
    progress: Callable[[str, int], None] = lambda _what, _n: None,
) -> tuple[list[Finding], int, int]:
    """``reconcile check --against-apis``: the findings, and how many orders and deals were
    read. ``progress`` is told ``("orders"|"deals", n)`` for each page."""
    promises = read_promises(settings, prefix)
    told = read_told(settings, prefix)
    with ApiClient(erp_url, crm_url, settings, page_size) as client:
        orders = client.orders(lambda n: progress("orders", n))
        deals = client.deals(lambda n: progress("deals", n))
    config = settings.processors
    found = check_apis(
        promises,
        orders,
        deals,
        datetime.now(UTC),
        timedelta(seconds=config.reconcile_order_sla_s),
        told,
        timedelta(seconds=config.reconcile_writeback_sla_s),
    )
    return found, len(orders), len(deals)
