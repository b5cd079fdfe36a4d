"""What ``audit.reconciliation`` says, folded; what the order commands promised, in any order."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.reconciliation import RecordType, encode_record
from ops.reconcile.apis import promises_of
from ops.reconcile.model import fold_records, render_csv
from processors.domain.quotes import build_order_command
from tests.processors.events import ACCOUNT_STATE, ADDRESS, quote_event

pytestmark = pytest.mark.unit

ACCOUNT: dict[str, Any] = {**ACCOUNT_STATE, "shipping_address": ADDRESS.model_dump(mode="json")}
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _record(kind: RecordType, fid: str, at: float, **fields: Any) -> dict[str, Any]:
    _key, value = encode_record(
        kind, "q1", at, finding_id=fid, kind="RECON_ORDER_MISSING", **fields
    )
    decoded: dict[str, Any] = json.loads(value)
    return decoded


def test_a_finding_is_open_until_resolved_and_its_repairs_are_remembered() -> None:
    start = T0.timestamp()
    records = [
        _record("finding", "f1", start, details={"revision": 1}),
        _record("finding", "f2", start + 10),
        _record("repair", "f1", start + 20, dry_run=False),
        _record("repair", "f2", start + 20, dry_run=True),
        _record("resolved", "f2", start + 30),
    ]
    view = fold_records(records)
    assert list(view.open) == ["f1"]
    assert [r["at"] for r in view.repairs["f1"]] == [(T0 + timedelta(seconds=20)).isoformat()]
    assert "f2" not in view.repairs  # a dry run did nothing
    assert view.selected(since=T0 + timedelta(seconds=1)) == []
    (finding,) = view.selected(["RECON_ORDER_MISSING"])
    assert finding.age_s(T0 + timedelta(minutes=1)) == 60
    assert render_csv([finding], T0).splitlines()[1].startswith("f1,RECON_ORDER_MISSING,q1,")


def test_the_promise_is_the_newest_revision_whatever_order_the_commands_are_read_in() -> None:
    create = build_order_command("create-order", quote_event("q", "a"), ACCOUNT)
    amend = build_order_command("amend-order", quote_event("q", "a", revision=2), ACCOUNT)
    withdrawn = quote_event("q", "a", revision=2, status="WITHDRAWN")
    cancel = build_order_command("cancel-order", withdrawn, ACCOUNT)
    for commands in ([create, amend], [amend, create]):
        promise = promises_of(commands)["q"]
        assert (promise.revision, promise.closed, promise.deal_id) == (2, False, "deal-q")
    for commands in ([create, amend, cancel], [cancel, amend, create]):
        assert promises_of(commands)["q"].closed
