"""The scenario model: deterministic by seed, with the promised fault mix and true ground truth."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from ops.simulator.conventions import crm_quote_id
from ops.simulator.pacing import TokenBucket
from ops.simulator.scenario import (
    Action,
    ChangeAction,
    CreditHoldAction,
    FaultMix,
    Scenario,
    WebhookAction,
)

pytestmark = pytest.mark.unit


def _take(seed: int, n: int, mix: FaultMix | None = None) -> tuple[Scenario, list[Action]]:
    scenario = Scenario(seed, mix)
    return scenario, list(itertools.islice(scenario.actions(), n))


def _until_episode_end(seed: int, n: int) -> tuple[Scenario, list[Action]]:
    scenario = Scenario(seed)
    stream = scenario.actions()
    actions = list(itertools.islice(stream, n))
    while scenario.episode_open:
        actions.append(next(stream))
    return scenario, actions


def test_same_seed_same_story_other_seed_other_story() -> None:
    first, a = _take(42, 2000)
    second, b = _take(42, 2000)
    _, c = _take(43, 2000)
    assert a == b
    assert first.truth == second.truth
    assert a != c


def test_every_fault_kind_is_injected() -> None:
    scenario, actions = _take(7, 4000)
    hooks = [a for a in actions if isinstance(a, WebhookAction)]
    assert {a.fault for a in hooks} == {None, "bad_json", "bad_signature"}
    assert {a.repeat for a in hooks} == {None, "duplicate", "redelivery"}
    assert any(isinstance(a, ChangeAction) and a.repeat for a in actions)
    assert any(isinstance(a, CreditHoldAction) for a in actions)
    truth = scenario.truth
    assert truth.invalid_quotes
    assert truth.withdrawn
    assert truth.ownership_breaches
    assert any(o.out_of_order for o in truth.expected_orders)
    assert any(o.revision == 2 for o in truth.expected_orders)


def test_repeats_carry_the_original_delivery_byte_for_byte() -> None:
    _, actions = _take(7, 4000)
    originals = {
        a.delivery_id: a.events
        for a in actions
        if isinstance(a, WebhookAction) and a.repeat is None
    }
    repeats = [a for a in actions if isinstance(a, WebhookAction) and a.repeat]
    assert repeats
    assert all(originals[r.delivery_id] == r.events for r in repeats)


def _accepts(actions: list[Action]) -> dict[str, dict]:
    """Deal id → the latest acceptance event sent for it."""
    found: dict[str, dict] = {}
    for a in actions:
        if isinstance(a, WebhookAction) and a.fault is None:
            for e in a.events:
                if e.get("propertyName") == "dealstage" and e.get("propertyValue") == "closedwon":
                    found[str(e["objectId"])] = e
    return found


def test_ground_truth_matches_what_was_sent() -> None:
    scenario, actions = _until_episode_end(11, 3000)
    truth = scenario.truth
    accepts = _accepts(actions)
    valid = {
        crm_quote_id(deal)
        for deal, e in accepts.items()
        if e["lines"] and all(Decimal(line["quantity"]) > 0 for line in e["lines"])
    }
    assert {o.quote_id for o in truth.expected_orders} == valid
    invalid = {crm_quote_id(d) for d in accepts} - valid
    assert {q.quote_id for q in truth.invalid_quotes} == invalid
    assert all(q.reason_prefix == "VALIDATION" for q in truth.invalid_quotes)
    for order in truth.expected_orders:
        assert accepts[order.deal_id]["quoteRevision"] == order.revision
    withdrawn = {w["deal_id"] for w in truth.withdrawn}
    assert not withdrawn & set(accepts)
    faulted = {a.delivery_id: a.fault for a in actions if isinstance(a, WebhookAction) and a.fault}
    assert {r.delivery_id: r.fault for r in truth.rejected} == faulted
    assert {r.fault: r.expected_status for r in truth.rejected} == {
        "bad_json": 400,
        "bad_signature": 401,
    }


def test_quote_ids_follow_the_crm_vendor() -> None:
    hubspot = Scenario(2)
    acme = Scenario(2, vendor="acme")
    list(itertools.islice(hubspot.actions(), 600))
    list(itertools.islice(acme.actions(), 600))
    pairs = zip(hubspot.truth.expected_orders, acme.truth.expected_orders, strict=True)
    for h, a in pairs:
        assert h.deal_id == a.deal_id
        assert h.quote_id == crm_quote_id(h.deal_id)
        assert a.quote_id == crm_quote_id(a.deal_id, "acme") != h.quote_id


def test_out_of_order_quote_comes_before_its_account() -> None:
    scenario, actions = _until_episode_end(5, 3000)
    late = [o for o in scenario.truth.expected_orders if o.out_of_order]
    assert late
    first_seen: dict[str, int] = {}
    for i, a in enumerate(actions):
        if isinstance(a, WebhookAction):
            for e in a.events:
                kind = e["subscriptionType"]
                key = f"company:{e['objectId']}" if kind == "company.creation" else None
                if kind.startswith("deal.") or kind.startswith("line_item."):
                    key = f"deal-of:{e['associatedCompanyId']}"
                if key:
                    first_seen.setdefault(key, i)
    for order in late:
        assert first_seen[f"deal-of:{order.company_id}"] < first_seen[f"company:{order.company_id}"]


def test_held_accounts_never_get_quotes() -> None:
    _, actions = _take(3, 4000)
    held = {a.customer_number for a in actions if isinstance(a, CreditHoldAction)}
    customers = {
        a.after["crm_id"]: a.after["customer_number"]
        for a in actions
        if isinstance(a, ChangeAction) and a.table == "customers" and a.after
    }
    quoted = {
        str(e["associatedCompanyId"])
        for a in actions
        if isinstance(a, WebhookAction)
        for e in a.events
        if e["subscriptionType"] == "deal.creation"
    }
    assert held
    assert not held & {customers[c] for c in quoted if c in customers}


def test_no_faults_when_the_mix_says_none() -> None:
    calm = FaultMix(
        duplicate=0,
        redelivery=0,
        out_of_order=0,
        bad_json=0,
        bad_signature=0,
        invalid_quote=0,
        withdrawal=0,
        revision=0,
        cdc_redelivery=0,
        ownership_breach=0,
        credit_hold=0,
    )
    scenario, actions = _take(9, 2000, calm)
    assert not any(isinstance(a, WebhookAction) and (a.fault or a.repeat) for a in actions)
    assert not scenario.truth.invalid_quotes
    assert not scenario.truth.rejected


def test_token_bucket_paces_at_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(10.0, lambda: now[0], burst=1.0)
    sent = 0
    while now[0] < 5.0:
        wait = bucket.wait()
        if wait == 0:
            sent += 1
        else:
            now[0] += wait
    assert 49 <= sent <= 51
