"""``reconcile check --against-apis``: the fake ERP and CRM on loopback, the order commands on
the real broker; drift that never produced an event (a deal deleted in the CRM, an order edited
in the ERP without change capture) is found, and nothing else."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from typer.testing import CliRunner

from connectors.fakes.server import ServerThread
from contracts import encode
from interlock.settings import Settings
from ops.reconcile.cli import make_reconcile_app
from ops.simulator.erp_api import create_erp_app
from ops.simulator.fake_crm import CrmDesk, create_crm_app
from ops.simulator.fake_erp import ErpBook, ErpTimings
from ops.simulator.truth import Recorded
from processors.domain.quotes import build_order_command
from tests.processors.events import ACCOUNT_STATE, ADDRESS, quote_event

pytestmark = pytest.mark.integration

QUOTES = ("q1", "q2", "q3", "q4", "q5")
KINDS = ("create", "amend", "cancel")
ACCOUNT: dict[str, Any] = {**ACCOUNT_STATE, "shipping_address": ADDRESS.model_dump(mode="json")}


@pytest.fixture
def systems() -> Iterator[tuple[ErpBook, ServerThread, ServerThread]]:
    """The fake ERP holding one order per quote, and the fake CRM holding their deals."""
    book = ErpBook(
        lambda change: None,
        Recorded(),
        timings=ErpTimings(unavailable=0.0, order_hold=0.0),
        clock=time.time,
    )
    desk = CrmDesk(Recorded(), lambda action: None, "app")
    for quote in QUOTES:
        body = {
            "quote_id": quote,
            "quote_revision": 1,
            "crm_record_id": f"deal-{quote}",
            "erp_customer_number": "C-a",
            "currency": "EUR",
            "lines": [{"quantity": "2", "unit_price": "10.00"}] * 2,
        }
        assert book.create(f"key-{quote}", body)[0] == 201
        desk.know_deal(f"deal-{quote}", "company-a")
    with ServerThread(create_erp_app(book)) as erp, ServerThread(create_crm_app(desk)) as crm:
        yield book, erp, crm


def test_a_deleted_deal_and_an_order_edited_without_cdc_are_found(
    systems: tuple[ErpBook, ServerThread, ServerThread],
    settings: Settings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Producer],
) -> None:
    book, erp, crm = systems
    prefix = f"rc{uuid.uuid4().hex[:8]}."
    topics = [make_topic(name=f"{prefix}commands.erp.{k}-order") for k in KINDS]
    producer = make_producer()
    for quote in QUOTES:
        event = quote_event(quote, "a", total=Decimal("40.00"))
        command = build_order_command("create-order", event, ACCOUNT)
        producer.produce(topics[0], encode(command), b"a")
    assert producer.flush(30) == 0

    app = make_reconcile_app(lambda: settings)

    def check() -> tuple[int, list[dict[str, Any]]]:
        args = ["check", "--against-apis", "--erp-url", erp.url, "--crm-url", crm.url,
                "--page-size", "2", "--format", "json", "--prefix", prefix]  # fmt: skip
        result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
        assert result.exit_code in (0, 1), result.output
        return result.exit_code, json.loads(result.stdout)

    assert check() == (0, [])  # five orders on three pages of two: all agree

    assert httpx.delete(f"{crm.url}/deals/deal-q2").status_code == 204
    number = next(o["order_number"] for o in book.orders() if o["quote_id"] == "q4")
    book.edit_by_hand(number, total_minor=5950, tax_minor=950)

    code, found = check()
    assert code == 1
    assert {(f["kind"], f["subject"]) for f in found} == {
        ("RECON_DEAL_MISSING", "deal-q2"),
        ("RECON_ORDER_MISMATCH", "q4"),
    }
    (edited,) = [f for f in found if f["kind"] == "RECON_ORDER_MISMATCH"]
    assert edited["details"]["net_total"] == {"quote": "40.00", "erp": "50.00"}


def test_a_write_back_the_crm_answered_but_never_applied_is_found(
    settings: Settings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Producer],
) -> None:
    """Lost write-back: the update-deal commands say INVOICED, the CRM still shows SHIPPED."""
    from connectors.sinks.contract import build_request
    from ops.simulator.truth import DriftCase
    from processors.domain.writeback import deal_update
    from tests.processors.events import erp_order_event

    desk = CrmDesk(Recorded(), lambda action: None, "app")
    erp = ErpBook(lambda change: None, Recorded(), clock=time.time)
    prefix = f"rc{uuid.uuid4().hex[:8]}."
    topic = make_topic(name=f"{prefix}commands.crm.update-deal")
    producer = make_producer()
    desk.plan_drift(DriftCase("drift-1", "crm_writeback_lost", 1, "q2", "deal-q2"))
    for quote in ("q1", "q2"):
        deal = f"deal-{quote}"
        desk.know_deal(deal, "company-a")
        state = {"quote_id": quote, "order_id": f"o-{quote}", "account_id": "a",
                 "deal_id": deal, "erp_order_number": f"SO-{quote}"}  # fmt: skip
        for version, status in enumerate(("SHIPPED", "INVOICED"), start=1):
            change = erp_order_event(f"o-{quote}", "a", quote, status=status, version=version)
            command = deal_update(change, state)
            assert command is not None
            producer.produce(topic, encode(command), b"a")
            call = build_request("update-deal", command)  # what the sinks send the CRM
            desk.patch("deals", deal, call.body, call.idempotency_key)
    assert producer.flush(30) == 0
    processors = settings.processors.model_copy(update={"reconcile_writeback_sla_s": 0.001})
    tight = settings.model_copy(update={"processors": processors})
    app = make_reconcile_app(lambda: tight)
    with ServerThread(create_erp_app(erp)) as erp_api, ServerThread(create_crm_app(desk)) as crm:
        args = ["check", "--against-apis", "--erp-url", erp_api.url, "--crm-url", crm.url,
                "--format", "json", "--prefix", prefix]  # fmt: skip
        result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    found = json.loads(result.stdout)
    assert {(f["kind"], f["subject"], f["details"]["field"]) for f in found} == {
        ("RECON_CRM_VALUE_OVERWRITTEN", "deal-q2", "status"),
    }
    assert found[0]["details"]["crm"] == "SHIPPED"
    assert found[0]["details"]["written"] == "INVOICED"
