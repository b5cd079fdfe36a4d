"""The exception desk inside the pipeline: dict tables, a fake clock, the records it writes.

Cases open where the flows meet judgment (policy, credit hold, validation, a vague match, a
quote past its grace); decisions read from ``review.decisions`` act once, whatever the clicks,
retries and replays; every one is on ``audit.decisions``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson
import pytest

from contracts import decode
from contracts.ownership import load_ownership
from contracts.policy import load_policy
from contracts.review import Case, decision_for, decode_case, encode_decision
from processors.pipeline import PipelineConfig
from processors.review import OVERRIDE_HEADER
from processors.topic_names import ProcessorTopics
from processors.trace import Record, journey, waiting
from tests.processors.events import account_event, erp_order_event, quote_event
from tests.processors.harness import PipelineHarness

pytestmark = pytest.mark.unit

POLICY = load_policy()
GRACE = 300.0


class Desk(PipelineHarness):
    """The pipeline with the exception desk; decisions arrive on ``review.decisions``."""

    def __init__(self) -> None:
        super().__init__(
            PipelineConfig(
                ProcessorTopics("t."), load_ownership(), GRACE, 3600.0, 0.85, commercial=POLICY
            )
        )

    def decide(
        self, case: Case, action: str, by: str = "alice", read_back: bool = True, **kwargs: str
    ) -> None:
        key, value = encode_decision(decision_for(case, action, by, self.now, **kwargs))
        self.send_raw(self.t.decisions, key, value, read_back)

    def cases(self) -> dict[str, Case]:
        """The latest state of every case, as the compacted topic keeps it."""
        out: dict[str, Case] = {}
        for topic, _key, value, _ in self.records:
            if topic == self.t.cases:
                case = decode_case(value)
                out[case.case_id] = case
        return out

    def case(self, kind: str) -> Case:
        (found,) = [c for c in self.cases().values() if c.kind == kind]
        return found

    def audit(self) -> list[dict[str, Any]]:
        """The decisions people took, as ``audit.decisions`` records them."""
        return [
            r
            for t, _, v, _ in self.records
            if t == self.t.audit and "case_decision" in (r := json.loads(v))
        ]


def over_discount(quote_id: str = "q1", **fields: Any) -> Any:
    return quote_event(
        quote_id, "a", subtotal=Decimal("1000"), discount_total=Decimal("300"),
        total=Decimal("700"), **fields,
    )  # fmt: skip


def held() -> Desk:
    desk = Desk()
    desk.send(desk.t.account, account_event("a"))
    desk.send(desk.t.quote, over_discount())
    return desk


def test_a_quote_over_the_discount_limit_waits_for_finance() -> None:
    desk = held()
    assert desk.commands(desk.t.create_order) == []
    case = desk.case("policy")
    assert (case.team, case.status, case.reason) == ("finance", "open", "POLICY_LIMIT_EXCEEDED")
    assert case.context.details["breaches"][0]["limit"] == "max_discount_pct"
    assert case.context.quote is not None
    assert case.context.quote.discount_pct == 30.0
    assert (case.quote_id, case.deal_id, case.partition_key) == ("q1", "deal-q1", "a")
    assert desk.metric("interlock_review_cases_opened_total", kind="policy", team="finance") == 1


def test_approve_creates_one_order_carrying_the_override_however_often_it_arrives() -> None:
    desk = held()
    case = desk.case("policy")
    desk.decide(case, "approve")
    desk.decide(case, "approve", by="bob")  # a second click, another browser: same decision id
    key, value = encode_decision(decision_for(case, "approve", "alice", desk.now))
    desk.send_raw(desk.t.decisions, key, value)  # a replay of the topic
    desk.send(desk.t.quote, over_discount())  # and the quote redelivered
    (order,) = desk.commands(desk.t.create_order)
    assert order.payload.status_reason is not None
    assert "override approved by alice" in order.payload.status_reason
    (headers,) = desk.headers(desk.t.create_order)
    override = orjson.loads(headers[OVERRIDE_HEADER])
    assert (override["by"], override["case_id"]) == ("alice", case.case_id)
    assert desk.case("policy").status == "approved"
    (audit,) = desk.audit()
    assert (audit["details"]["by"], audit["correlation_id"]) == ("alice", "q1")
    assert desk.metric("interlock_review_decisions_total", action="approve", result="applied") == 1
    assert (
        desk.metric("interlock_review_decisions_total", action="approve", result="duplicate") == 2
    )


def test_reject_writes_the_reason_to_the_deal_and_no_order_ever_comes() -> None:
    desk = held()
    case = desk.case("policy")
    desk.decide(case, "reject", reason="margin below floor")
    desk.decide(case, "approve", by="bob")  # too late: the case is decided
    desk.send(desk.t.quote, over_discount(version=2))  # the same revision, sent again
    assert desk.commands(desk.t.create_order) == []
    (update,) = desk.commands(desk.t.update_deal)
    assert update.payload.crm_record_id == "deal-q1"
    assert update.payload.status == "REJECTED"
    assert update.payload.status_reason == "rejected by alice: margin below floor"
    outcomes = [a["outcome"] for a in desk.audit()]
    assert outcomes[0].startswith("rejected")
    assert outcomes[1] == "refused: case already rejected"
    assert desk.case("policy").status == "rejected"


def test_a_later_revision_approved_while_the_first_create_is_in_flight_amends_it() -> None:
    desk = held()
    desk.send(desk.t.quote, over_discount(revision=2))
    first, second = sorted(
        (c for c in desk.cases().values() if c.kind == "policy"),
        key=lambda c: c.context.quote.revision if c.context.quote else 0,
    )
    # both approved before the first approval's create-order is read back
    desk.decide(first, "approve", read_back=False)
    desk.decide(second, "approve", read_back=False)
    desk.read_back()
    (create,) = desk.commands(desk.t.create_order)
    assert create.payload.quote_revision == 1
    outcomes = [a["outcome"] for a in desk.audit()]
    assert outcomes[1] == "approved; order created with the override: amend", outcomes
    # the amend waits for the ERP order's number, then goes out at revision 2
    assert desk.commands(desk.t.amend_order) == []
    order = erp_order_event(create.payload.order_id, "a", "q1", status="REQUESTED")
    desk.send(desk.t.order, order)
    (amend,) = desk.commands(desk.t.amend_order)
    assert (amend.payload.quote_revision, amend.payload.erp_order_number) == (2, "SO-1")


def test_a_new_revision_within_the_limits_is_ordered_without_a_person() -> None:
    desk = held()
    desk.send(desk.t.quote, quote_event("q1", "a", revision=2))
    (order,) = desk.commands(desk.t.create_order)
    assert order.payload.quote_revision == 2


def test_a_new_customers_first_order_above_its_limit_is_held_and_the_next_is_not() -> None:
    desk = Desk()
    desk.send(desk.t.account, account_event("a"))
    big = {"total": Decimal("60000"), "subtotal": Decimal("60000")}
    desk.send(desk.t.quote, quote_event("q1", "a", **big))
    assert desk.case("policy").context.details["breaches"][0]["limit"] == "first_order_total"
    desk.decide(desk.case("policy"), "approve")
    desk.send(desk.t.quote, quote_event("q2", "a", **big))
    assert [c.payload.quote_id for c in desk.commands(desk.t.create_order)] == ["q1", "q2"]


def test_credit_hold_becomes_a_finance_case_and_approval_orders_despite_the_hold() -> None:
    desk = Desk()
    desk.send(desk.t.account, account_event("a", **{**HOLD}))
    desk.send(desk.t.quote, quote_event("q1", "a"))
    assert len(desk.dead) == 1  # the dead letter stays: engineers keep their trail
    case = desk.case("credit_hold")
    assert case.team == "finance"
    desk.decide(case, "approve")
    (order,) = desk.commands(desk.t.create_order)
    assert order.payload.quote_id == "q1"


HOLD = {
    "erp_customer_number": "C-a", "currency": "EUR", "payment_terms": "NET30",
    "credit_hold": True,
}  # fmt: skip


def test_validation_failure_is_routed_by_its_reason() -> None:
    desk = Desk()
    desk.send(desk.t.account, account_event("a"))
    desk.send(desk.t.quote, quote_event("q1", "a", currency="USD"))
    case = desk.case("validation")
    assert case.team == "finance"  # QUOTE_CURRENCY_MISMATCH is routed to finance
    assert case.context.details["codes"] == ["QUOTE_CURRENCY_MISMATCH"]


def test_a_vague_match_is_a_case_its_quote_waits_and_approval_links_and_releases_it() -> None:
    desk = Desk()
    desk.send(desk.t.account, account_event("crm-i", "crm", crm_record_id="co-8", name="Initech"))
    desk.send(desk.t.quote, quote_event("q1", "crm-i"))
    desk.send(desk.t.account, account_event(
        "erp-i", "erp", version=2, erp_customer_number="C-88", legal_name="Initech Ltd",
        currency="EUR", payment_terms="NET30", credit_hold=False,
    ))  # fmt: skip
    case = desk.case("account_match")
    assert (case.team, case.account_id, case.quote_id) == ("sales-ops", "crm-i", "q1")
    assert case.context.match is not None
    assert [c.account_id for c in case.context.match.candidates] == ["crm-i"]
    desk.tick(GRACE + 10)  # the quote waits for the person, not for its grace
    assert desk.dead == []
    assert desk.commands(desk.t.create_order) == []
    desk.decide(case, "approve", by="sam")
    desk.decide(case, "link", by="sam", target="crm-i")  # the other button, same meaning
    (order,) = desk.commands(desk.t.create_order)
    assert order.payload.erp_customer_number == "C-88"
    assert desk.case("account_match").status == "linked"
    assert next(a["details"]["by"] for a in desk.audit()) == "sam"
    assert desk.audit()[0]["correlation_id"] == "q1"


def vague_match() -> Desk:
    """Two sides of Initech too vague to link alone (a case), and a quote parked for them."""
    desk = Desk()
    desk.send(desk.t.account, account_event("crm-i", "crm", crm_record_id="co-8", name="Initech"))
    desk.send(desk.t.account, account_event(
        "erp-i", "erp", version=2, erp_customer_number="C-88", legal_name="Initech Ltd",
    ))  # fmt: skip
    desk.send(desk.t.quote, quote_event("q1", "crm-i"))
    return desk


def vague_match_with_a_parked_quote() -> tuple[Desk, Case]:
    """The vague match, its quote parked past its grace (it waits for the open case)."""
    desk = vague_match()
    desk.tick(GRACE + 10)
    return desk, desk.case("account_match")


def test_a_tick_while_the_decided_link_is_on_its_way_does_not_time_the_quote_out() -> None:
    desk, case = vague_match_with_a_parked_quote()
    # the case is linked at once; the AccountLinked events are not read back yet, and the
    # quote's partition ticks in between (a loaded broker makes that gap seconds long)
    assert case.context.match is not None
    (candidate,) = [c.account_id for c in case.context.match.candidates]
    desk.decide(case, "link", by="sam", target=candidate, read_back=False)
    assert desk.case("account_match").status == "linked"
    desk.tick(1)  # the tick's scan runs first, then the links are read back
    assert desk.dead == []
    (order,) = desk.commands(desk.t.create_order)
    assert (order.payload.quote_id, order.payload.erp_customer_number) == ("q1", "C-88")


def test_a_decided_link_that_never_lands_lets_the_quote_time_out_a_grace_later() -> None:
    desk, case = vague_match_with_a_parked_quote()
    desk.decide(case, "link", by="sam", read_back=False)
    desk.lose_in_flight()
    desk.tick(GRACE - 1)
    assert desk.dead == []
    desk.tick(2)
    ((raw, error),) = desk.dead
    assert raw.topic == desk.t.quote
    assert str(error).startswith("QUOTE_ACCOUNT_NOT_LINKED"), error
    assert desk.commands(desk.t.create_order) == []


def test_these_are_different_lets_the_quote_time_out_into_its_own_case() -> None:
    desk = vague_match()
    desk.decide(desk.case("account_match"), "distinct")
    desk.tick(GRACE + 10)
    assert len(desk.dead) == 1
    timeout = desk.case("parked_timeout")
    assert (timeout.team, timeout.quote_id) == ("integration", "q1")
    assert desk.case("account_match").status == "distinct"


def test_a_case_past_its_sla_is_escalated_counted_and_reported() -> None:
    desk = held()
    case = desk.case("policy")
    desk.tick(1)
    assert desk.metric("interlock_review_cases_open", team="finance", severity=case.severity) == 1
    desk.tick(POLICY.sla_for(case.severity))
    up = desk.case("policy")
    assert (up.status, up.severity) == ("escalated", POLICY.escalated(case.severity))
    assert desk.metric("interlock_review_sla_breaches_total", team="finance", kind="policy") == 1
    assert desk.metric("interlock_review_oldest_case_age_seconds", team="finance") > 0
    desk.decide(up, "approve")
    desk.tick(1)
    assert desk.metric("interlock_review_cases_open", team="finance", severity=up.severity) == 0


def test_a_malformed_decision_is_dead_lettered_and_an_unknown_case_is_audited() -> None:
    desk = held()
    desk.send_raw(desk.t.decisions, b"a", b"{not json")
    ((raw, error),) = desk.dead
    assert (raw.topic, raw.value) == (desk.t.decisions, b"{not json")
    assert str(error).startswith("decision record is not JSON")
    assert getattr(error, "reason", None) == "DECODE_FAILED"
    other = desk.case("policy").model_copy(update={"case_id": "nope"})
    desk.decide(other, "approve")
    (audit,) = desk.audit()
    assert audit["outcome"].startswith("refused: unknown case")
    assert desk.commands(desk.t.create_order) == []


def test_the_trace_shows_the_case_and_the_decision_with_the_operators_name() -> None:
    desk = held()
    base = int(desk.now * 1000)
    before = [
        Record(t, base, k, v, tuple(h or ())) for t, k, v, h in desk.records if t == desk.t.audit
    ]
    status = waiting(journey(before, "q1", desk.t.audit, decode), GRACE)
    assert status is not None
    assert "a case for a person" in status
    desk.now += 60
    desk.decide(desk.case("policy"), "approve", by="alice")
    records = [
        Record(t, base, k, v, tuple(h or ())) for t, k, v, h in desk.records if t == desk.t.audit
    ]
    hops = journey(records, "q1", desk.t.audit, decode)
    approved = [h for h in hops if h.what == "decision: case_approve"]
    assert len(approved) == 1
    assert '"by": "alice"' in approved[0].detail
    assert waiting(hops, GRACE) is None  # the order went on: nothing waits
