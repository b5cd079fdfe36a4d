"""The exception desk in a real worker on Kafka: a case per situation on review.cases, and
decisions on review.decisions that act once however often they arrive."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from contracts import OrderEvent
from contracts.review import Case, decision_for, decode_case, encode_decision
from interlock.records import RawRecord
from processors.review import OVERRIDE_HEADER
from tests.processors.conftest import ProcessorsEnv
from tests.processors.events import account_event, quote_event, vague_account_match

pytestmark = pytest.mark.integration


def latest_cases(records: list[RawRecord]) -> dict[str, Case]:
    cases: dict[str, Case] = {}
    for record in records:
        if record.value:
            case = decode_case(record.value)
            cases[case.case_id] = case
    return cases


def wait_case(env: ProcessorsEnv, kind: str, status: str = "open") -> Case:
    def found(records: list[RawRecord]) -> bool:
        return any(c.kind == kind and c.status == status for c in latest_cases(records).values())

    records = env.wait_for_raw(env.topics.cases, found, timeout=120)
    matching = [c for c in latest_cases(records).values() if c.kind == kind]
    assert matching, [w.output() for w in env.workers]
    return matching[0]


def decide(env: ProcessorsEnv, case: Case, action: str, by: str, **kwargs: str) -> None:
    key, value = encode_decision(decision_for(case, action, by, 1_700_000_000.0, **kwargs))
    env.send_raw(env.topics.decisions, key, value)


def over_discount(quote_id: str, account_id: str) -> object:
    return quote_event(
        quote_id, account_id, subtotal=Decimal("1000"), discount_total=Decimal("400"),
        total=Decimal("600"),
    )  # fmt: skip


def test_policy_cases_approved_once_and_rejected_back_to_the_deal(proc_env: ProcessorsEnv) -> None:
    t = proc_env.topics
    proc_env.send(t.account, account_event("acct-ok"), account_event("acct-no"))
    proc_env.send(t.quote, over_discount("q-ok", "acct-ok"), over_discount("q-no", "acct-no"))
    worker = proc_env.start_worker()
    records = proc_env.wait_for_raw(
        t.cases,
        lambda recs: len({c.quote_id for c in latest_cases(recs).values()}) >= 2,
        timeout=120,
    )
    cases = {c.quote_id: c for c in latest_cases(records).values()}
    assert {c.team for c in cases.values()} == {"finance"}, worker.output()
    assert proc_env.events(t.create_order) == []

    approve = cases["q-ok"]
    decide(proc_env, approve, "approve", "alice")
    decide(proc_env, approve, "approve", "alice")  # a double click
    decide(proc_env, cases["q-no"], "reject", "bob", reason="discount not agreed")
    proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 1)
    proc_env.wait_for(t.update_deal, lambda ev: len(ev) >= 1)
    # a replay of the whole decisions topic, byte for byte, acts on nothing again
    for record in proc_env.read_records(t.decisions):
        proc_env.send_raw(t.decisions, record.key or b"", record.value or b"")
    duplicates = worker.wait_metric("interlock_review_decisions_total", 4, result="duplicate")
    assert duplicates == 4  # the double click, then the three records replayed

    orders = proc_env.events(t.create_order)
    assert [o.payload.quote_id for o in orders if isinstance(o, OrderEvent)] == ["q-ok"]
    (raw_order,) = proc_env.read_records(t.create_order)
    override = orjson.loads(dict(raw_order.headers)[OVERRIDE_HEADER] or b"{}")
    assert (override["by"], override["case_id"]) == ("alice", approve.case_id)
    (update,) = [u for u in proc_env.events(t.update_deal) if isinstance(u, OrderEvent)]
    assert (update.payload.crm_record_id, update.payload.status) == ("deal-q-no", "REJECTED")
    assert update.payload.status_reason == "rejected by bob: discount not agreed"
    audit = [r for r in proc_env.audit() if "case_decision" in r]
    assert sorted((r["details"]["by"], r["outcome"].split(";")[0]) for r in audit) == [
        ("alice", "approved"),
        ("bob", "rejected"),
    ]
    final = latest_cases(proc_env.read_records(t.cases))
    assert {c.quote_id: c.status for c in final.values()} == {
        "q-ok": "approved",
        "q-no": "rejected",
    }
    assert worker.metric("interlock_review_decisions_total", result="applied") == 2


def test_a_vague_match_waits_for_a_person_and_approval_releases_the_quote(
    proc_env: ProcessorsEnv,
) -> None:
    t = proc_env.topics
    crm, erp = vague_account_match()
    proc_env.send(t.account, crm)
    proc_env.send(t.account, erp)
    worker = proc_env.start_worker(INTERLOCK_PROCESSORS__JOIN_GRACE_S="3")
    case = wait_case(proc_env, "account_match")
    assert (case.team, case.account_id) == ("sales-ops", "crm-initech")
    assert case.context.match is not None
    assert case.context.match.score < case.context.match.threshold
    proc_env.send(t.quote, quote_event("q-i", "crm-initech"))
    # past its grace the quote still waits: a person is deciding its account
    waited = worker.wait_metric("interlock_parked_oldest_age_seconds", 5, waiting_for="link")
    assert waited >= 5, worker.output()
    assert worker.metric("interlock_review_cases_open", team="sales-ops") == 1
    assert proc_env.read_records(f"dlq.{t.quote}") == []
    decide(proc_env, case, "approve", "sam")
    orders = proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 1)
    assert [o.payload.erp_customer_number for o in orders if isinstance(o, OrderEvent)] == ["C-88"]
    assert wait_case(proc_env, "account_match", "linked").status == "linked"
    audit = [r for r in proc_env.audit() if "case_decision" in r]
    # the case found the quote it held back: the decision is in that quote's journey
    assert [(r["details"]["by"], r["correlation_id"]) for r in audit] == [("sam", "q-i")]


def test_a_decision_replayed_to_a_restarted_worker_still_acts_once(
    proc_env: ProcessorsEnv,
) -> None:
    t = proc_env.topics
    proc_env.send(t.account, account_event("acct-r"))
    proc_env.send(t.quote, over_discount("q-r", "acct-r"))
    first = proc_env.start_worker()
    case = wait_case(proc_env, "policy")
    decide(proc_env, case, "approve", "alice")
    proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 1)
    wait_case(proc_env, "policy", "approved")
    assert first.stop() == 0, first.output()
    # a new worker, tables rebuilt from their changelogs, and the decisions replayed
    second = proc_env.start_worker()
    for record in proc_env.read_records(t.decisions):
        proc_env.send_raw(t.decisions, record.key or b"", record.value or b"")
    proc_env.send(t.quote, over_discount("q-r", "acct-r"))  # and the quote redelivered
    assert second.wait_metric("interlock_review_decisions_total", 1, result="duplicate") == 1
    assert second.wait_metric("interlock_duplicates_suppressed_total", 1, stage="quote") == 1
    assert len(proc_env.events(t.create_order)) == 1
    assert second.metric("interlock_review_decisions_total", result="applied") == 0
