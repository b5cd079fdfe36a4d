"""The parity ledger's pure functions: folding what each side said, and the drift found."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from contracts.errors import Reason
from contracts.reconciliation import finding_id, parse_kind
from processors.domain.quotes import build_order_command, order_state_of
from processors.domain.reconcile import (
    Slas,
    drift,
    erp_facts,
    fold_erp,
    fold_promise,
    merge_orphan,
    promise_of,
    transitions,
)
from tests.processors.events import (
    ACCOUNT_STATE,
    ADDRESS,
    erp_order_event,
    invoice_event,
    quote_event,
    shipment_event,
)

pytestmark = pytest.mark.unit

SLAS = Slas(order_s=60.0, writeback_s=30.0)
ACCOUNT: dict[str, Any] = {**ACCOUNT_STATE, "shipping_address": ADDRESS.model_dump(mode="json")}


def _promised(now: float = 0.0, **quote: Any) -> dict[str, Any]:
    command = build_order_command("create-order", quote_event("q1", "a", **quote), ACCOUNT)
    return fold_promise(None, order_state_of(command), promise_of(command), 0, now)


def _erp(entry: dict[str, Any], *events: Any, now: float = 0.0) -> dict[str, Any]:
    for event in events:
        entry = {**entry, "erp": fold_erp(entry.get("erp"), erp_facts(event, False), now)}
    return entry


def test_an_order_requested_and_not_in_the_erp_is_drift_only_after_its_sla() -> None:
    entry = _promised(now=100.0)
    assert drift(entry, 159.0, SLAS) == []
    (found,) = drift(entry, 160.0, SLAS)
    assert found.kind is Reason.RECON_ORDER_MISSING
    assert found.subject == "q1"
    assert found.repair == {
        "command": "create-order",
        "event_id": entry["promise"]["create_event_id"],
    }
    with_order = _erp(entry, erp_order_event("o", "a", "q1", number="SO-1"))
    assert drift(with_order, 1000.0, SLAS) == []


def test_an_order_deleted_in_the_erp_is_missing_and_left_to_a_person() -> None:
    entry = _erp(_promised(now=0.0), erp_order_event("o", "a", "q1", number="SO-1"))
    deleted = erp_order_event("o", "a", "q1", number="SO-1", version=2)
    deleted = deleted.model_copy(update={"event_type": "OrderDeleted"})
    (found,) = drift(_erp(entry, deleted), 100.0, SLAS)
    assert found.kind is Reason.RECON_ORDER_MISSING
    assert found.details["deleted_in_erp"] is True
    assert found.repair is None


def test_the_erp_total_is_compared_net_of_tax_with_the_quote_total() -> None:
    entry = _promised(total=Decimal("40.00"), revision=1)
    agrees = _erp(
        entry,
        erp_order_event("o", "a", "q1", total=Decimal("47.60"), tax_total=Decimal("7.60"),
                        quote_revision=1, currency="EUR"),
    )  # fmt: skip
    assert drift(agrees, 0.0, SLAS) == []
    edited = _erp(
        entry,
        erp_order_event("o", "a", "q1", total=Decimal("59.50"), tax_total=Decimal("9.50"),
                        quote_revision=1, currency="USD"),
    )  # fmt: skip
    (found,) = drift(edited, 0.0, SLAS)
    assert found.kind is Reason.RECON_ORDER_MISMATCH
    assert found.details["net_total"] == {"quote": "40.00", "erp": "50.00"}
    assert found.details["currency"] == {"quote": "EUR", "erp": "USD"}
    assert found.finding_id == finding_id(Reason.RECON_ORDER_MISMATCH, "q1", "1")


def test_an_erp_order_of_an_older_revision_differs_only_once_the_amend_had_its_sla() -> None:
    entry = _promised(now=0.0, total=Decimal("40.00"), revision=2)
    older = _erp(entry, erp_order_event("o", "a", "q1", total=Decimal("20"), quote_revision=1))
    assert drift(older, 59.0, SLAS) == []
    assert [f.kind for f in drift(older, 61.0, SLAS)] == [Reason.RECON_ORDER_MISMATCH]


def test_lines_are_compared_when_the_erp_reports_them() -> None:
    entry = _promised()
    line = {"line_number": 1, "sku": "SKU-1", "quantity": Decimal("3")}
    lines = erp_order_event("o", "a", "q1", quote_revision=1, lines=[line])
    (found,) = drift(_erp(entry, lines), 0.0, SLAS)
    assert found.details["lines"] == ["line 1 quantity 2 != 3", "line 2 missing in the ERP"]


def test_the_sinks_report_of_our_own_call_counts_for_the_status_not_the_amounts() -> None:
    event = erp_order_event("o", "a", "q1", total=Decimal("1"), status="ON_CREDIT_HOLD")
    facts = erp_facts(event, ours=True)
    assert facts["status"] == "ON_CREDIT_HOLD"
    assert "total" not in facts


def test_an_order_without_a_quote_is_drift_after_the_order_sla() -> None:
    orphan = {"number": "SO-9", "erp": fold_erp(None, {"number": "SO-9", "at": "x"}, 10.0)}
    assert drift(orphan, 69.0, SLAS) == []
    (found,) = drift(orphan, 70.0, SLAS)
    assert (found.kind, found.subject) == (Reason.RECON_ORDER_WITHOUT_QUOTE, "SO-9")


def test_shipped_or_held_and_not_told_is_drift_after_the_writeback_sla() -> None:
    entry = _erp(_promised(), erp_order_event("o", "a", "q1", number="SO-1"), now=0.0)
    held = _erp(entry, erp_order_event("o", "a", "q1", status="ON_CREDIT_HOLD", version=2),
                now=10.0)  # fmt: skip
    assert drift(held, 39.0, SLAS) == []
    (found,) = drift(held, 40.0, SLAS)
    assert found.kind is Reason.RECON_DEAL_STILL_OPEN
    assert found.repair is not None
    assert found.repair["command"] == "update-deal"
    told = {**held, "told": {"last": "ON_CREDIT_HOLD", "at": {"ON_CREDIT_HOLD": 12.0}}}
    assert drift(told, 40.0, SLAS) == []
    shipped = _erp(entry, shipment_event("a", "o", "SO-1", "T1"),
                   invoice_event("a", "o", "SO-1", "ISSUED"), now=5.0)  # fmt: skip
    (found,) = drift(shipped, 35.0, SLAS)
    assert found.kind is Reason.RECON_FULFILMENT_NOT_REPORTED
    assert found.details["erp_status"] == "INVOICED"  # the furthest step covers shipping
    reported = {**shipped, "told": {"last": "INVOICED", "at": {"INVOICED": 6.0}}}
    assert drift(reported, 100.0, SLAS) == []


def test_a_released_hold_is_no_longer_owed_to_the_deal() -> None:
    entry = _erp(_promised(), erp_order_event("o", "a", "q1", status="ON_CREDIT_HOLD"),
                 erp_order_event("o", "a", "q1", status="RELEASED", version=2))  # fmt: skip
    assert drift(entry, 1000.0, SLAS) == []


def test_statuses_arriving_out_of_order_keep_the_newest() -> None:
    newer = erp_order_event("o", "a", "q1", status="CONFIRMED", version=5)
    older = erp_order_event("o", "a", "q1", status="ON_CREDIT_HOLD", version=1)
    entry = _erp(_promised(), newer, older)
    assert entry["erp"]["status"] == "CONFIRMED"


def test_a_quote_claiming_an_orphan_order_takes_what_the_erp_reported() -> None:
    orphan = {"erp": fold_erp(None, {"number": "SO-1", "fulfilment": "SHIPPED", "at": "x"}, 1.0)}
    claimed = merge_orphan(_promised(), orphan)
    assert claimed["erp"]["number"] == "SO-1"
    assert [f.kind for f in drift(claimed, 100.0, SLAS)] == [Reason.RECON_FULFILMENT_NOT_REPORTED]


def test_the_same_drift_found_twice_opens_once_and_resolves_once() -> None:
    entry = _promised(now=0.0)
    found = drift(entry, 100.0, SLAS)
    first = transitions(None, found, 100.0)
    assert [f.kind for f in first.opened] == [Reason.RECON_ORDER_MISSING]
    again = transitions(first.open, drift(entry, 200.0, SLAS), 200.0)
    assert again.opened == []
    assert again.resolved == []
    assert again.open == first.open  # opened_at kept
    gone = transitions(again.open, [], 300.0)
    assert [fid for fid, _ in gone.resolved] == [found[0].finding_id]
    assert gone.open == {}


def test_kinds_parse_from_their_code_with_or_without_prefix() -> None:
    assert parse_kind("order_missing") is Reason.RECON_ORDER_MISSING
    assert parse_kind("RECON_DEAL_STILL_OPEN") is Reason.RECON_DEAL_STILL_OPEN
    with pytest.raises(ValueError, match="unknown drift kind"):
        parse_kind("nothing")
