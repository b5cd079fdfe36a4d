"""Injected drift: a schedule from the seed alone, the story around it unchanged, and a check
that fails on a missed case or a false finding (precision and recall, per kind)."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from contracts.errors import Reason
from ops.simulator.actions import DriftAction, WebhookAction
from ops.simulator.drift import (
    API_ONLY,
    DRIFT_KINDS,
    FINDING_OF,
    DriftMix,
    DriftSchedule,
    FindingSeen,
    expected_findings,
    score,
)
from ops.simulator.findings import await_findings, findings_of, settle_times
from ops.simulator.invariants import InvariantResult, check_invariants
from ops.simulator.observed import Observed
from ops.simulator.scenario import Action, Scenario
from ops.simulator.truth import (
    DriftCase,
    DriftInjected,
    ErpOrder,
    GroundTruth,
    Recorded,
)

pytestmark = pytest.mark.unit

Run = tuple[GroundTruth, Recorded, Observed]


# -- the schedule -------------------------------------------------------------------------------
def test_the_schedule_is_a_function_of_the_seed() -> None:
    first = DriftSchedule(7).plan(200)
    assert DriftSchedule(7).plan(200) == first
    assert DriftSchedule(8).plan(200) != first
    # every kind comes once per round, in a seeded order, a seeded gap of quotes apart
    kinds = [kind for _, kind, _ in first]
    for start in range(0, len(kinds) - 4, 5):
        assert sorted(kinds[start : start + 5]) == sorted(DRIFT_KINDS)
    positions = [n for n, _, _ in first]
    gaps = [b - a for a, b in zip([0, *positions], positions, strict=False)]
    assert min(gaps) >= 1
    assert max(gaps) <= 2 * DriftMix().every - 1
    assert 200 / 12 < len(first) < 200 / 3  # about one in six
    edits = [change for _, kind, change in first if kind == "erp_order_edited"]
    assert edits
    assert all(c["discount_pct"] in (5, 10, 15, 20, 25) for c in edits)


def test_the_mix_chooses_the_kinds_and_the_density() -> None:
    plan = DriftSchedule(3, DriftMix(every=2, kinds=("erp_order_deleted",))).plan(100)
    assert {kind for _, kind, _ in plan} == {"erp_order_deleted"}
    assert len(plan) > 25
    with pytest.raises(ValueError, match="at least 1"):
        DriftMix(every=0)
    with pytest.raises(ValueError, match="drift kinds are some of"):
        DriftMix(kinds=("erp_order_lost",))  # type: ignore[arg-type]


# -- the scenario -------------------------------------------------------------------------------
def _story(seed: int, n: int, drift: DriftMix | None) -> tuple[Scenario, list[Action]]:
    scenario = Scenario(seed, drift=drift)
    return scenario, list(itertools.islice(scenario.actions(), n))


def test_drift_is_added_to_the_same_story_and_recorded_in_the_ground_truth() -> None:
    plain, without = _story(11, 4000, None)
    drifting, with_drift = _story(11, 4200, DriftMix())
    others = [a for a in with_drift if not isinstance(a, DriftAction)]
    assert others[: len(without)] == without
    assert plain.truth.drift == []
    assert "drift_cases" not in plain.truth.summary()

    cases = drifting.truth.drift
    injected = [a.case for a in with_drift if isinstance(a, DriftAction)]
    assert injected == cases[: len(injected)]
    assert len(injected) > 20
    assert set(Counter(c.kind for c in cases)) == set(DRIFT_KINDS)
    assert [c.case_id for c in cases] == [f"drift-{i}" for i in range(1, len(cases) + 1)]
    assert [c.quote_number for c in cases] == sorted({c.quote_number for c in cases})
    assert cases == _story(11, 4200, DriftMix())[0].truth.drift  # again: the same

    expected = {o.quote_id: o for o in drifting.truth.expected_orders}
    for case in cases:
        if case.kind == "erp_order_by_hand":  # the customer's, no quote's
            assert case.quote_id is None
            assert case.customer_number
            assert case.change["subtotal_minor"] > 0
            continue
        assert case.quote_id is not None
        order = expected[case.quote_id]  # a valid quote, accepted once, in order
        assert order.revision == 1
        assert not order.out_of_order
        assert case.deal_id == order.deal_id


def test_a_drift_action_comes_before_its_quote_reaches_the_crm() -> None:
    _, actions = _story(5, 3000, DriftMix(every=2))
    checked = 0
    for i, action in enumerate(actions):
        if not isinstance(action, DriftAction) or action.case.deal_id is None:
            continue
        deal = int(action.case.deal_id)
        hooks = [a for a in actions if isinstance(a, WebhookAction)]
        first = next(h for h in hooks if h.events[0].get("objectId") == deal)
        assert first.events[0]["subscriptionType"] == "deal.creation"
        assert actions.index(first) > i
        checked += 1
    assert checked > 50


# -- scoring ------------------------------------------------------------------------------------
INJECTED = [
    DriftInjected("drift-1", "erp_order_edited", "q-1", 10.0),
    DriftInjected("drift-2", "erp_order_deleted", "q-2", 11.0),
    DriftInjected("drift-3", "erp_order_by_hand", "SO-000009", 12.0),
    DriftInjected("drift-4", "crm_writeback_lost", "204", 13.0),
    DriftInjected("drift-5", "crm_deal_deleted", "205", 14.0),
]


def _seen(kind: Reason, subject: str, detail: str = "") -> FindingSeen:
    return FindingSeen(f"{kind}-{subject}-{detail}", str(kind), subject)


WORKER = [
    _seen(Reason.RECON_ORDER_MISMATCH, "q-1", "1"),
    _seen(Reason.RECON_ORDER_MISSING, "q-2"),
    _seen(Reason.RECON_ORDER_WITHOUT_QUOTE, "SO-000009"),
]
APIS = [
    *WORKER,
    _seen(Reason.RECON_CRM_VALUE_OVERWRITTEN, "204", "status"),
    _seen(Reason.RECON_CRM_VALUE_OVERWRITTEN, "204", "status_reason"),
    _seen(Reason.RECON_DEAL_MISSING, "205"),
]


def test_every_kind_maps_to_the_finding_it_must_cause() -> None:
    assert set(FINDING_OF) == set(DRIFT_KINDS)
    assert {"crm_writeback_lost", "crm_deal_deleted"} == API_ONLY
    expected = expected_findings(INJECTED)
    assert [(e.kind, e.subject) for e in expected] == [
        ("RECON_ORDER_MISMATCH", "q-1"),
        ("RECON_ORDER_MISSING", "q-2"),
        ("RECON_ORDER_WITHOUT_QUOTE", "SO-000009"),
        ("RECON_CRM_VALUE_OVERWRITTEN", "204"),
        ("RECON_DEAL_MISSING", "205"),
    ]


def test_exactly_the_injected_drift_scores_full_precision_and_recall() -> None:
    result = score(expected_findings(INJECTED), APIS)
    assert result.exact
    assert result.recall == result.precision == 1.0
    assert (result.expected, result.found, result.findings) == (5, 5, 6)  # two fields, one case
    assert all(k.injected == k.found for k in result.by_kind)
    assert all(k.false == 0 for k in result.by_kind)


def test_a_missed_case_and_a_false_finding_are_named_and_counted_by_kind() -> None:
    findings = [*APIS[1:], _seen(Reason.RECON_DEAL_STILL_OPEN, "q-7", "ON_CREDIT_HOLD")]
    result = score(expected_findings(INJECTED), findings)
    assert not result.exact
    assert result.missed == ("erp_order_edited drift-1: no RECON_ORDER_MISMATCH for q-1",)
    assert result.false == ("RECON_DEAL_STILL_OPEN q-7 was not injected",)
    assert result.recall == 4 / 5
    assert result.precision == 5 / 6
    by_kind = {k.kind: (k.injected, k.found, k.false) for k in result.by_kind}
    assert by_kind["RECON_ORDER_MISMATCH"] == (1, 0, 0)
    assert by_kind["RECON_DEAL_STILL_OPEN"] == (0, 0, 1)


def test_a_finding_on_the_right_subject_but_of_the_wrong_kind_is_missed_and_false() -> None:
    result = score(expected_findings(INJECTED[:1]), [_seen(Reason.RECON_ORDER_MISSING, "q-1")])
    assert result.found == 0
    assert result.false == ("RECON_ORDER_MISSING q-1 was not injected",)


# -- the invariants -----------------------------------------------------------------------------
def _drift_run() -> Run:
    """Drift of every kind, each found: by the worker what events show, by the sweep all."""
    truth = GroundTruth(seed=1)
    recorded = Recorded()
    for i, c in enumerate(INJECTED, start=1):
        on_quote = c.kind != "erp_order_by_hand"
        quote = (
            (c.subject if c.subject.startswith("q-") else f"q-{c.subject}") if on_quote else None
        )
        truth.add_drift(DriftCase(c.case_id, c.kind, i, quote))
        if quote is not None:
            truth.add_expected_order(quote, 1, str(200 + i), "11", False)
            recorded.erp_orders.append(ErpOrder(f"SO-{i}", f"k{i}", quote, 1, str(200 + i), "C1"))
    recorded.drift_injected += INJECTED
    recorded.api_sweep = {
        "at": 20.0,
        "findings": [
            {"finding_id": f.finding_id, "kind": f.kind, "subject": f.subject} for f in APIS
        ],
    }
    return truth, recorded, Observed(findings=list(WORKER))


def _drift_results(run: Run) -> dict[str, InvariantResult]:
    return {r.name: r for r in check_invariants(*run) if r.name.startswith("drift_")}


def _verdicts(run: Run) -> dict[str, bool]:
    return {r.name: r.passed for r in check_invariants(*run) if not r.name.startswith("drift_")}


def test_with_drift_two_invariants_pass_when_exactly_it_was_found() -> None:
    results = _drift_results(_drift_run())
    worker, apis = results["drift_found_by_worker"], results["drift_found_against_apis"]
    assert worker.passed
    assert apis.passed
    assert (worker.expected, worker.actual) == (3, 3)
    assert (apis.expected, apis.actual) == (5, 5)
    assert worker.note == "recall 100% (3/3 cases), precision 100% (3/3 findings)"
    assert apis.note == "recall 100% (5/5 cases), precision 100% (6/6 findings)"
    assert len(apis.breakdown) == 5
    assert all(_verdicts(_drift_run()).values())


def test_without_drift_there_are_no_drift_invariants() -> None:
    names = [r.name for r in check_invariants(GroundTruth(seed=1), Recorded(), Observed())]
    assert not [n for n in names if n.startswith("drift_")]


def test_the_drift_invariants_fail_on_a_missed_case_and_a_false_finding() -> None:
    truth, recorded, observed = _drift_run()
    observed.findings = [
        *WORKER[1:],  # the edited order's mismatch is missed
        _seen(Reason.RECON_FULFILMENT_NOT_REPORTED, "q-8", "SHIPPED"),  # nobody injected it
    ]
    recorded.api_sweep["findings"] = recorded.api_sweep["findings"][:-1]  # the deleted deal
    results = _drift_results((truth, recorded, observed))
    worker, apis = results["drift_found_by_worker"], results["drift_found_against_apis"]
    assert not worker.passed
    assert not apis.passed
    assert worker.examples == (
        "RECON_FULFILMENT_NOT_REPORTED q-8 was not injected",
        "erp_order_edited drift-1: no RECON_ORDER_MISMATCH for q-1",
    )
    assert apis.examples == ("crm_deal_deleted drift-5: no RECON_DEAL_MISSING for 205",)
    by_kind = {k.kind: (k.injected, k.found, k.false) for k in worker.breakdown}
    assert by_kind == {
        "RECON_FULFILMENT_NOT_REPORTED": (0, 0, 1),
        "RECON_ORDER_MISMATCH": (1, 0, 0),
        "RECON_ORDER_MISSING": (1, 1, 0),
        "RECON_ORDER_WITHOUT_QUOTE": (1, 1, 0),
    }
    assert worker.note == "recall 67% (2/3 cases), precision 67% (2/3 findings)"
    assert _verdicts((truth, recorded, observed)) == _verdicts(_drift_run())  # only drift fails


def test_the_worker_finding_what_only_the_apis_can_see_is_not_false() -> None:
    truth, recorded, observed = _drift_run()
    observed.findings.append(_seen(Reason.RECON_DEAL_MISSING, "205"))
    assert _drift_results((truth, recorded, observed))["drift_found_by_worker"].passed


def test_drift_never_carried_out_fails_unless_its_quote_was_never_ordered() -> None:
    truth, recorded, observed = _drift_run()
    truth.add_drift(DriftCase("drift-6", "crm_writeback_lost", 9, "q-9", "209"))
    recorded.erp_orders.append(ErpOrder("SO-9", "k9", "q-9", 1, "209", "C1"))
    apis = _drift_results((truth, recorded, observed))["drift_found_against_apis"]
    assert apis.examples == ("drift-6 crm_writeback_lost planned, never carried out",)

    recorded.erp_orders.pop()  # e.g. the quote was rejected on the exception desk
    apis = _drift_results((truth, recorded, observed))["drift_found_against_apis"]
    assert apis.passed
    assert "1 planned on a quote never ordered" in apis.note


def test_without_a_sweep_of_the_apis_the_check_fails() -> None:
    truth, recorded, observed = _drift_run()
    recorded.api_sweep = {"error": "stopped before the sweep"}
    apis = _drift_results((truth, recorded, observed))["drift_found_against_apis"]
    assert not apis.passed
    assert apis.examples[0] == "APIs not swept: stopped before the sweep"


# -- waiting for the worker ---------------------------------------------------------------------
def test_findings_are_every_finding_ever_opened() -> None:
    opened = {"record": "finding", "finding_id": "f1", "kind": "RECON_ORDER_MISSING"}
    records = [
        {**opened, "subject": "q-1"},
        {**opened, "record": "resolved", "subject": "q-1"},
        {**opened, "subject": "q-1"},
        {"record": "repair", "finding_id": "f1"},
        None,
    ]
    assert findings_of(records) == [FindingSeen("f1", "RECON_ORDER_MISSING", "q-1")]


def test_the_wait_ends_when_all_is_found_and_the_slas_passed_or_at_the_deadline() -> None:
    assert settle_times([100.0, 130.0], 20.0, 2.0, 60.0) == (152.0, 212.0)
    expected = expected_findings(INJECTED[:2])
    clock = [140.0]
    reads: list[float] = []

    def read() -> list[FindingSeen]:
        reads.append(clock[0])
        return WORKER[:2] if clock[0] >= 146.0 else WORKER[:1]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    found = await_findings(read, expected, 152.0, 212.0, wall=lambda: clock[0], sleep=sleep)
    assert found == WORKER[:2]
    assert reads[-1] == 152.0  # all there at 146, but the SLAs of the last injection end at 152

    clock[0], reads[:] = 140.0, []

    def never() -> list[FindingSeen]:
        return read()[:1]

    last = await_findings(never, expected, 152.0, 212.0, wall=lambda: clock[0], sleep=sleep)
    assert last == WORKER[:1]
    assert reads[-1] == 212.0
