"""Invariants: a consistent run passes; each kind of violation fails exactly its invariant."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, fields, replace
from pathlib import Path

import pytest

from ops.simulator.invariants import check_invariants
from ops.simulator.observed import DeadLetterSeen, DealCommandSeen, Observed
from ops.simulator.truth import (
    CrmCall,
    ErpAmendment,
    ErpOrder,
    ErpStatusChange,
    GroundTruth,
    Recorded,
    load_run,
    save_run,
)

pytestmark = pytest.mark.unit

Run = tuple[GroundTruth, Recorded, Observed]


def _run() -> Run:
    truth = GroundTruth(seed=1)
    truth.add_expected_order("q1", 1, "101", "11", False)
    truth.add_expected_order("q2", 1, "102", "12", True)
    truth.revise_expected_order("q2", 2)
    truth.add_invalid("q3", 1, "103", "no lines")
    truth.add_withdrawn("q4", "104")
    truth.add_rejected("d1", "bad_json")
    truth.add_rejected("d2", "bad_signature")
    truth.add_ownership_breach("11", "C1", "name", "Acme ERP-RENAMED-9")
    rec = Recorded()
    rec.response(400, "d1")
    rec.response(401, "d2")
    rec.erp_orders += [
        ErpOrder("SO-1", "k1", "q1", 1, "101", "C1"),
        ErpOrder("SO-2", "k2", "q2", 1, "102", "C2"),
    ]
    rec.erp_amendments.append(ErpAmendment("SO-2", "k3", "amend", 2))
    for number, deal in (("SO-1", "101"), ("SO-2", "102")):
        rec.erp_status_changes += [
            ErpStatusChange(number, deal, "CONFIRMED"),
            ErpStatusChange(number, deal, "SHIPPED", "shipment"),
            ErpStatusChange(number, deal, "SHIPPED"),
        ]
        rec.crm_calls += [
            CrmCall("PATCH", "deals", deal, {"status": "CONFIRMED"}, f"c-{deal}"),
            CrmCall("PATCH", "deals", deal, {"status": "SHIPPED"}, f"s1-{deal}"),
            CrmCall("PATCH", "deals", deal, {"status": "SHIPPED"}, f"s2-{deal}"),
        ]
    observed = Observed(
        dead_letters=[DeadLetterSeen("dlq.canonical.quote.v1", "VALIDATION_MISSING_FIELD", "q3")],
        deal_commands=[DealCommandSeen("e1", "101", "CONFIRMED")],
    )
    return truth, rec, observed


def _failed(run: Run) -> set[str]:
    return {r.name for r in check_invariants(*run) if not r.passed}


def test_a_consistent_run_passes_every_invariant() -> None:
    results = check_invariants(*_run())
    assert len(results) == 17  # 12, and 5 of the exception desk
    assert all(r.passed for r in results), [r for r in results if not r.passed]


def _dup_order(run: Run) -> None:
    run[1].erp_orders.append(ErpOrder("SO-3", "k9", "q1", 1, "101", "C1"))


def _missing_order(run: Run) -> None:
    del run[1].erp_orders[0]


def _order_for_invalid(run: Run) -> None:
    run[1].erp_orders.append(ErpOrder("SO-4", "k4", "q3", 1, "103", "C3"))


def _shared_key(run: Run) -> None:
    run[1].erp_orders[1] = replace(run[1].erp_orders[1], idempotency_key="k1")


def _no_amendment(run: Run) -> None:
    run[1].erp_amendments.clear()


def _invalid_not_dead_lettered(run: Run) -> None:
    run[2].dead_letters[0] = replace(run[2].dead_letters[0], reason="MAPPING_FAILED")


def _bad_webhook_accepted(run: Run) -> None:
    run[1].rejected_responses["d2"] = 200


def _stray_dead_letter(run: Run) -> None:
    run[2].dead_letters.append(DeadLetterSeen("dlq.raw.crm.hubspot", "MAPPING_FAILED", None))


def _owned_field_leaked(run: Run) -> None:
    run[1].crm_calls.append(
        CrmCall("PATCH", "companies", "11", {"name": "Acme ERP-RENAMED-9"}, "x")
    )


def _echo_loop(run: Run) -> None:
    run[1].crm_calls.append(CrmCall("PATCH", "deals", "101", {"status": "CONFIRMED"}, "echo-again"))


def _echo_command(run: Run) -> None:
    run[2].deal_commands.append(DealCommandSeen("e2", "101", "CONFIRMED"))


def _write_back_lost(run: Run) -> None:
    run[1].erp_status_changes.append(ErpStatusChange("SO-1", "101", "INVOICED", "invoice"))


def _write_back_overtaken(run: Run) -> None:
    calls = run[1].crm_calls
    confirmed = next(c for c in calls if c.object_id == "101" and c.idempotency_key == "c-101")
    calls.remove(confirmed)
    calls.append(confirmed)  # CONFIRMED lands after SHIPPED: the deal shows an older status


def test_a_write_sent_again_after_a_crash_may_repeat_the_past_but_must_end_current() -> None:
    run = _run()
    calls = run[1].crm_calls
    replayed = [c for c in calls if c.object_id == "101"]
    calls.extend(replayed)  # the sinks restarted and sent the deal's writes again, in order
    assert "write_backs_in_order" not in _failed(run)
    calls.append(replayed[0])  # an old write replayed last: the deal ends on CONFIRMED
    assert "write_backs_in_order" in _failed(run)


@pytest.mark.parametrize(
    ("breach", "invariant"),
    [
        (_dup_order, "orders_exactly_once"),
        (_missing_order, "orders_complete"),
        (_order_for_invalid, "no_unexpected_orders"),
        (_shared_key, "idempotency_keys"),
        (_no_amendment, "revisions_amended"),
        (_invalid_not_dead_lettered, "invalid_quotes_dead_lettered"),
        (_bad_webhook_accepted, "bad_webhooks_rejected"),
        (_stray_dead_letter, "no_unexpected_dead_letters"),
        (_owned_field_leaked, "crm_owned_fields_untouched"),
        (_echo_loop, "no_echo_loops"),
        (_echo_command, "no_echo_loops"),
        (_write_back_lost, "write_backs_delivered"),
        (_write_back_overtaken, "write_backs_in_order"),
    ],
)
def test_each_violation_fails_its_invariant(breach: Callable[[Run], None], invariant: str) -> None:
    run = _run()
    breach(run)
    failed = _failed(run)
    assert invariant in failed
    if breach is _invalid_not_dead_lettered:  # the wrong reason also makes it an unexplained one
        failed.discard("no_unexpected_dead_letters")
    if breach is _order_for_invalid:
        failed.discard("idempotency_keys")
    if breach is _echo_loop:  # the echo wrote an older status again, after a newer one
        failed.discard("write_backs_in_order")
    assert failed == {invariant}


def test_ground_truth_and_recordings_round_trip_through_json(tmp_path: Path) -> None:
    truth, rec, _ = _run()
    path = tmp_path / "run.json"
    save_run(path, truth, rec, seed=1)
    loaded_truth, loaded_rec = load_run(path)
    assert loaded_truth == truth
    assert loaded_rec.snapshot() == rec.snapshot()


def test_a_saved_run_holds_what_json_wrote_of_the_dataclasses(tmp_path: Path) -> None:
    """orjson writes the dataclasses as they are; the document is the one ``json`` wrote of
    ``asdict`` copies, key for key, so readers of older files and of new ones see one format."""
    truth, rec, _ = _run()
    rec.add("crm_calls", CrmCall("PATCH", "deals", "d-1", {"status": "SHIPPED"}, "k-1"))
    recorded = {
        f.name: (
            [asdict(v) for v in getattr(rec, f.name)]
            if isinstance(getattr(rec, f.name), list)
            else getattr(rec, f.name)
        )
        for f in fields(rec)
        if f.name != "_lock"
    }
    assert recorded["erp_orders"]  # the run recorded some
    meta = {"seed": 1, "phase": "running"}
    expected = {"meta": meta, "summary": truth.summary(), "truth": asdict(truth)}
    expected["recorded"] = recorded
    path = tmp_path / "run.json"
    save_run(path, truth, rec, **meta)
    assert json.loads(path.read_text()) == json.loads(json.dumps(expected, default=str))


def test_a_snapshot_of_the_recordings_is_a_copy() -> None:
    _, rec, _ = _run()
    copy = rec.snapshot()
    rec.add("erp_orders", rec.erp_orders[0])
    rec.response(201)
    assert len(copy["erp_orders"]) == len(rec.erp_orders) - 1  # a copy, not a view
    assert copy["responses"] != rec.snapshot()["responses"]
