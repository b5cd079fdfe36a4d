"""On the real broker, with the real worker: drift is found and recorded once, the report lists
it, ``repair --dry-run`` writes nothing anywhere, ``repair`` re-drives a missing order (the very
same create-order bytes) and a missing write-back through the command topics, the worker then
resolves the findings, and a second ``repair`` produces nothing more.

The sinks are not running: the ERP's answer to the re-driven create-order is played by the test
(the ``OrderCreated`` the sinks would publish), so that the finding's resolution is observed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from contracts import OrderEvent
from interlock.settings import Settings
from ops.reconcile.cli import make_reconcile_app
from tests.processors.conftest import ProcessorsEnv, proc_env  # noqa: F401  (fixture)
from tests.processors.events import account_event, erp_order_event, quote_event, shipment_event

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

WORKER_ENV = {
    "INTERLOCK_PROCESSORS__RECONCILE_ORDER_SLA_S": "3",
    "INTERLOCK_PROCESSORS__RECONCILE_WRITEBACK_SLA_S": "3",
    "INTERLOCK_PROCESSORS__RECONCILE_INTERVAL_S": "0.5",
}


def _records(env: ProcessorsEnv) -> list[dict[str, Any]]:
    return [json.loads(v) for _, v, _ in env.read_all(env.topics.reconciliation) if v is not None]


def _wait_json(
    env: ProcessorsEnv,
    topic: str,
    predicate: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 60,
) -> list[dict[str, Any]]:
    """Re-read ``topic`` as JSON until ``predicate`` holds; fail with what was read if not."""

    def parsed(raw: list[Any]) -> list[dict[str, Any]]:
        return [json.loads(r.value) for r in raw if r.value]

    records = parsed(env.wait_for_raw(topic, lambda raw: predicate(parsed(raw)), timeout))
    assert predicate(records), records
    return records


def _wait_records(
    env: ProcessorsEnv, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 60
) -> list[dict[str, Any]]:
    return _wait_json(env, env.topics.reconciliation, predicate, timeout)


def _wait_decision(env: ProcessorsEnv, decision: str, event_id: str) -> None:
    _wait_json(
        env,
        env.topics.audit,
        lambda rs: any(r["decision"] == decision and r["event_id"] == event_id for r in rs),
    )


def _of(records: list[dict[str, Any]], record: str, kind: str) -> list[dict[str, Any]]:
    return [r for r in records if r["record"] == record and r["kind"] == kind]


def test_drift_found_reported_and_repaired_once(
    proc_env: ProcessorsEnv,  # noqa: F811
    settings: Settings,
) -> None:
    env, t = proc_env, proc_env.topics
    app = make_reconcile_app(lambda: settings)

    def reconcile(*args: str) -> str:
        result = CliRunner().invoke(app, [*args, "--prefix", t.prefix], env={"COLUMNS": "250"})
        assert result.exit_code == 0, result.output
        return result.stdout

    def command_counts() -> dict[str, int]:
        return {topic: len(env.read_all(topic)) for topic in t.commands()}

    worker = env.start_worker(**WORKER_ENV)
    # q1: ordered, and the ERP never answers. q2: ordered and confirmed, but its shipment came
    # before anything named its ERP order, so the deal was never told it shipped.
    env.send(t.account, account_event("a1"), account_event("a2"))
    env.send(t.quote, quote_event("q1", "a1"), quote_event("q2", "a2"))
    env.wait_for(t.create_order, lambda events: len(events) == 2, timeout=90)
    shipment = shipment_event("a2", "erp-order-2", "SO-2", "T2")
    env.send(t.shipment, shipment)
    # The worker reads the shipment and order topics in no fixed order: read first, the order
    # would name SO-2 and the shipment would be written back as it should, with no drift.
    _wait_decision(env, "ignored", shipment.event_id)
    env.send(t.order, erp_order_event("o2", "a2", "q2", status="CONFIRMED", number="SO-2"))

    missing, unreported = "RECON_ORDER_MISSING", "RECON_FULFILMENT_NOT_REPORTED"
    records = _wait_records(
        env, lambda rs: bool(_of(rs, "finding", missing) and _of(rs, "finding", unreported))
    )
    assert worker.process.poll() is None, worker.output()
    (order_finding,) = _of(records, "finding", missing)
    assert order_finding["subject"] == "q1"
    (deal_finding,) = _of(records, "finding", unreported)
    assert (deal_finding["subject"], deal_finding["details"]["erp_status"]) == ("q2", "SHIPPED")
    assert worker.wait_metric("interlock_reconciliation_drift", 2) >= 2

    report = json.loads(reconcile("report", "--format", "json", "--since", "1h"))
    assert {(f["kind"], f["subject"]) for f in report} == {(missing, "q1"), (unreported, "q2")}

    before, findings_before = command_counts(), len(_records(env))
    for kind in ("order_missing", "fulfilment_not_reported"):
        assert "would re-drive" in reconcile("repair", "--kind", kind, "--dry-run")
    assert command_counts() == before
    assert len(_records(env)) == findings_before

    # the missing order: the create-order is re-driven byte for byte (same event id)
    assert "1 command(s) re-driven" in reconcile("repair", "--kind", "order_missing")
    creates = env.read_all(t.create_order)
    assert len(creates) == before[t.create_order] + 1
    q1_creates = [v for _, v, _ in creates if b"q1" in (v or b"")]
    assert len(q1_creates) == 2
    assert q1_creates[0] == q1_creates[1]
    # the sinks' answer to it, as they would publish it: the worker resolves the finding
    created = erp_order_event("o1", "a1", "q1", status="CONFIRMED", number="SO-1",
                              origin="interlock")  # fmt: skip
    env.send(t.order, created)

    # the missing write-back: the update-deal the finding carries, read back by the worker
    assert "1 command(s) re-driven" in reconcile("repair", "--kind", "fulfilment_not_reported")
    (repaired,) = [
        e for e in env.events(t.update_deal) if e.event_id == deal_finding["repair"]["event_id"]
    ]
    assert isinstance(repaired, OrderEvent)
    assert (repaired.payload.status, repaired.payload.crm_record_id) == ("SHIPPED", "deal-q2")

    records = _wait_records(
        env, lambda rs: bool(_of(rs, "resolved", missing) and _of(rs, "resolved", unreported))
    )
    repairs = [r for r in records if r["record"] == "repair"]
    assert {(r["kind"], r["command"]) for r in repairs} == {
        (missing, "create-order"),
        (unreported, "update-deal"),
    }
    assert json.loads(reconcile("report", "--format", "json")) == []

    # twice: nothing more on any command topic, nothing more recorded
    after = command_counts()
    for kind in ("order_missing", "fulfilment_not_reported"):
        assert "0 command(s) re-driven" in reconcile("repair", "--kind", kind)
    assert command_counts() == after
    assert len([r for r in _records(env) if r["record"] == "repair"]) == 2
    # each drift was recorded once when found and once when resolved
    final = _records(env)
    for kind in (missing, unreported):
        assert len(_of(final, "finding", kind)) == 1
        assert len(_of(final, "resolved", kind)) == 1
