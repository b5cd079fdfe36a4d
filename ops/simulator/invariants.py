"""The invariants of a run: ground truth against what the topics and the fake APIs show.

``check_invariants(truth, recorded, observed)`` is pure and returns one result per named
invariant with expected and actual counts; what the topics hold comes from
``ops.simulator.observed.read_observed``; ``render_results`` prints a rich table. A run
passes when every invariant passes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from rich.console import Console
from rich.table import Table

from ops.simulator.drift import (
    API_ONLY,
    DriftScore,
    FindingSeen,
    KindScore,
    expected_findings,
    score,
)
from ops.simulator.observed import CaseSeen, Observed
from ops.simulator.truth import ExpectedOrder, GroundTruth, Recorded

__all__ = ["InvariantResult", "check_invariants", "check_orders", "render_results"]


@dataclass(frozen=True)
class InvariantResult:
    """One invariant: what was expected, what was found, and examples of what is wrong."""

    name: str
    description: str
    expected: int
    actual: int
    passed: bool
    examples: tuple[str, ...] = ()
    breakdown: tuple[KindScore, ...] = ()
    """Per finding kind (drift invariants): cases injected, found, and false findings."""
    note: str = ""


def _result(
    name: str, description: str, expected: int, actual: int, bad: Iterable[str]
) -> InvariantResult:
    examples = tuple(sorted(bad))
    return InvariantResult(name, description, expected, actual, not examples, examples[:5])


def check_orders(truth: GroundTruth, recorded: Recorded) -> list[InvariantResult]:
    """The order invariants alone (exactly once, complete, none unexpected, revisions): what
    the fake ERP shows against the ground truth, without reading any topic."""
    expected = {o.quote_id: o for o in truth.expected_orders}
    per_quote = Counter(o.quote_id for o in recorded.erp_orders if o.quote_id)
    keys = {o.idempotency_key for o in recorded.erp_orders}
    numbers = {o.order_number for o in recorded.erp_orders}
    amended = {(a.order_number, a.revision) for a in recorded.erp_amendments if a.kind == "amend"}
    number_of = {o.quote_id: o.order_number for o in recorded.erp_orders}
    created_at = {o.quote_id: o.revision for o in recorded.erp_orders}
    revised = [o for o in truth.expected_orders if o.revision > 1]

    def at_revision(o: ExpectedOrder) -> bool:
        # Amended to the revision, or created at it (the revision arrived before the order).
        created = created_at.get(o.quote_id)
        if created is not None and created >= o.revision:
            return True
        return (number_of.get(o.quote_id), o.revision) in amended

    return [
        _result(
            "orders_exactly_once",
            "no quote got more than one ERP order",
            len(per_quote),
            len(per_quote),
            [f"quote {q} has {n} orders" for q, n in per_quote.items() if n > 1],
        ),
        _result(
            "orders_complete",
            "every valid accepted quote has its ERP order",
            len(expected),
            sum(1 for q in expected if per_quote[q]),
            [
                f"no order for quote {q} (deal {o.deal_id})"
                for q, o in expected.items()
                if not per_quote[q]
            ],
        ),
        _result(
            "no_unexpected_orders",
            "no order for an invalid, withdrawn or unknown quote",
            0,
            sum(n for q, n in per_quote.items() if q not in expected),
            [f"order for quote {q}" for q in per_quote if q not in expected],
        ),
        _result(
            "idempotency_keys",
            "each created order has its own Idempotency-Key",
            len(numbers),
            len(keys),
            [] if len(keys) == len(numbers) else [f"{len(numbers)} orders, {len(keys)} keys"],
        ),
        _result(
            "revisions_amended",
            "a re-accepted quote revision is what the ERP order holds (amended or created)",
            len(revised),
            sum(1 for o in revised if at_revision(o)),
            [
                f"quote {o.quote_id} revision {o.revision} not amended"
                for o in revised
                if not at_revision(o)
            ],
        ),
    ]


def _bad_inputs(
    truth: GroundTruth, recorded: Recorded, observed: Observed
) -> list[InvariantResult]:
    found = {(d.topic, d.quote_id): d.reason for d in observed.dead_letters if d.quote_id}
    missing = []
    for q in truth.invalid_quotes:
        reason = found.get((q.topic, q.quote_id))
        if reason is None or not reason.startswith(q.reason_prefix):
            missing.append(
                f"quote {q.quote_id} ({q.why}) not in {q.topic} with {q.reason_prefix}*"
                f" (found {reason})"
            )
    wrong = []
    for r in truth.rejected:
        got = recorded.rejected_responses.get(r.delivery_id)
        if got != r.expected_status:
            wrong.append(
                f"delivery {r.delivery_id} ({r.fault}) answered {got}, not {r.expected_status}"
            )
    explained = {(q.topic, q.quote_id) for q in truth.invalid_quotes}
    stray = Counter(
        f"{d.topic} {d.reason}"
        for d in observed.dead_letters
        if (d.topic, d.quote_id) not in explained
    )
    return [
        _result(
            "invalid_quotes_dead_lettered",
            "every business-invalid quote is dead-lettered with a VALIDATION reason",
            len(truth.invalid_quotes),
            len(truth.invalid_quotes) - len(missing),
            missing,
        ),
        _result(
            "bad_webhooks_rejected",
            "malformed → 400, badly signed → 401, never accepted",
            len(truth.rejected),
            len(truth.rejected) - len(wrong),
            wrong,
        ),
        _result(
            "no_unexpected_dead_letters",
            "nothing else was dead-lettered",
            0,
            sum(stray.values()),
            [f"{n} x {k}" for k, n in stray.items()],
        ),
    ]


def _crm_side(truth: GroundTruth, recorded: Recorded, observed: Observed) -> list[InvariantResult]:
    breach_values = {b.value for b in truth.ownership_breaches}
    leaks = [
        f"{c.object_type}/{c.object_id} received {k}={v!r}"
        for c in recorded.crm_calls
        for k, v in c.properties.items()
        if (isinstance(v, str) and v in breach_values) or (c.object_type != "deals" and k == "name")
    ]
    causes: Counter[tuple[str | None, str | None]] = Counter(
        (s.deal_id, s.status) for s in recorded.erp_status_changes
    )
    keys: dict[tuple[str, Any], set[str]] = defaultdict(set)
    for c in recorded.crm_calls:
        if c.object_type == "deals":
            keys[(c.object_id, c.properties.get("status"))].add(c.idempotency_key or repr(c))
    commands: dict[tuple[str | None, str | None], set[str]] = defaultdict(set)
    for d in observed.deal_commands:
        commands[(d.deal_id, d.status)].add(d.event_id)
    loops = [
        f"deal {d} status {s}: {len(k)} write-backs for {causes[(d, s)]} ERP changes"
        for (d, s), k in keys.items()
        if len(k) > causes[(d, s)]
    ]
    loops += [
        f"deal {d} status {s}: {len(e)} update-deal commands for {causes[(d, s)]} ERP changes"
        for (d, s), e in commands.items()
        if len(e) > causes[(d, s)]
    ]
    final: dict[str, tuple[str | None, str]] = {}
    for s in recorded.erp_status_changes:
        final[s.order_number] = (s.deal_id, s.status)
    written = {(c.object_id, c.properties.get("status")) for c in recorded.crm_calls}
    undelivered = [
        f"order {n}: {st} never reached deal {d}"
        for n, (d, st) in final.items()
        if (d, st) not in written
    ]
    out_of_order = _out_of_order(recorded)
    return [
        _result(
            "crm_owned_fields_untouched",
            "no ERP change of a CRM-owned field reached the CRM",
            0,
            len(leaks),
            leaks,
        ),
        _result(
            "no_echo_loops",
            "each ERP status change is written back at most once; echoes cause no further command",
            sum(causes.values()),
            sum(len(k) for k in keys.values()),
            loops,
        ),
        _result(
            "write_backs_delivered",
            "every order's latest ERP status reached the CRM deal",
            len(final),
            len(final) - len(undelivered),
            undelivered,
        ),
        _result(
            "write_backs_in_order",
            "each deal ends on the status the ERP set last (no older one overtook it)",
            len(final),
            len(final) - len(out_of_order),
            out_of_order,
        ),
    ]


def _out_of_order(recorded: Recorded) -> list[str]:
    """Deals whose last write-back is not the status the ERP set last: an older status (an
    outage's backlog, a retry, a replay after a crash) overtook a newer one for good. A deal
    may show an older status for a moment after a crash (at-least-once replays); it must end
    on the current one."""
    latest: dict[str, str] = {}
    for s in recorded.erp_status_changes:
        if s.deal_id is not None:
            latest[s.deal_id] = s.status
    shown: dict[str, str] = {}
    written: set[tuple[str, str]] = set()
    for c in recorded.crm_calls:
        if c.object_type == "deals" and c.properties.get("status") is not None:
            shown[c.object_id] = str(c.properties["status"])
            written.add((c.object_id, shown[c.object_id]))
    # a latest status never written at all is write_backs_delivered's to report
    return [
        f"deal {deal}: shows {shown[deal]}, the ERP set {status} last"
        for deal, status in latest.items()
        if deal in shown and shown[deal] != status and (deal, status) in written
    ]


def check_invariants(
    truth: GroundTruth, recorded: Recorded, observed: Observed
) -> list[InvariantResult]:
    """Every invariant of the run, in a stable order."""
    excused_truth, excused_recorded, excused_observed = _excuse_cases(truth, recorded, observed)
    return [
        *check_orders(excused_truth, excused_recorded),
        *_bad_inputs(truth, recorded, observed),
        *_crm_side(truth, excused_recorded, excused_observed),
        *_cases(truth, recorded, observed),
        *_drift(truth, recorded, observed),
    ]


def _drift(truth: GroundTruth, recorded: Recorded, observed: Observed) -> list[InvariantResult]:
    """With injected drift: reconciliation found exactly it, in the worker's findings (what
    events show) and in the sweep of the APIs (everything), with each case's kind."""
    if not truth.drift:
        return []
    every = expected_findings(recorded.drift_injected)
    carried_out = {e.case_id for e in every}
    # drift planned on a quote that was never ordered (e.g. rejected on the exception desk)
    # had nothing to act on: not applicable; any other case not carried out is a failure
    ordered = {o.quote_id for o in recorded.erp_orders}
    planned = [c for c in truth.drift if c.case_id not in carried_out]
    moot = [c for c in planned if c.quote_id is not None and c.quote_id not in ordered]
    not_injected = [c for c in planned if c not in moot]
    worker = score([e for e in every if not e.api_only], observed.findings, also_injected=every)
    worker_unseen = [
        f"{c.case_id} {c.kind} planned, never carried out"
        for c in not_injected
        if c.kind not in API_ONLY
    ]
    sweep = recorded.api_sweep
    swept = [
        FindingSeen(str(f["finding_id"]), str(f["kind"]), str(f["subject"]))
        for f in sweep.get("findings") or ()
    ]
    apis = score(every, swept)
    apis_problems = [f"{c.case_id} {c.kind} planned, never carried out" for c in not_injected]
    if not sweep or sweep.get("error"):
        apis_problems.append(f"APIs not swept: {sweep.get('error', 'no sweep ran')}")
    return [
        _drift_result(
            "drift_found_by_worker",
            "every injected drift that produces an event is a finding on audit.reconciliation "
            "with its kind, and no other finding was raised",
            worker,
            worker_unseen,
            len(moot),
        ),
        _drift_result(
            "drift_found_against_apis",
            "reconcile check --against-apis finds every injected drift with its kind (also what "
            "no event shows: a lost write-back, a deleted deal), and nothing else",
            apis,
            apis_problems,
            len(moot),
        ),
    ]


def _drift_result(
    name: str, description: str, found: DriftScore, problems: list[str], moot: int
) -> InvariantResult:
    bad = [*found.missed, *found.false, *problems]
    note = (
        f"recall {found.recall:.0%} ({found.found}/{found.expected} cases), "
        f"precision {found.precision:.0%} ({found.true_findings}/{found.findings} findings)"
    )
    if moot:
        note += f"; {moot} planned on a quote never ordered (not applicable)"
    result = _result(name, description, found.expected, found.found, bad)
    return replace(result, breakdown=found.by_kind, note=note)


_DECIDED = frozenset({"approved", "rejected", "linked", "distinct", "closed"})
_QUOTE_KINDS = frozenset({"policy", "credit_hold", "validation", "parked_timeout"})
REJECTED_STATUS = "REJECTED"
"""The deal status a rejected case writes back (with the reason)."""


def _waiting_or_rejected(observed: Observed) -> dict[tuple[str, int | None], CaseSeen]:
    """Quote revisions a person holds (open case) or refused (rejected case)."""
    return {
        (c.quote_id, c.revision): c
        for c in observed.cases
        if c.quote_id and c.kind in _QUOTE_KINDS and c.status not in ("approved", "closed")
    }


def _excuse_cases(
    truth: GroundTruth, recorded: Recorded, observed: Observed
) -> tuple[GroundTruth, Recorded, Observed]:
    """What the order and CRM invariants must not count, because a person holds or refused it.

    A valid quote whose revision waits for a decision or was rejected has no order, by design:
    it leaves the expected orders (the case invariants check it instead). A rejection writes
    ``REJECTED`` to its deal without an ERP change behind it: that write is not an echo.
    """
    held = _waiting_or_rejected(observed)
    expected = [o for o in truth.expected_orders if (o.quote_id, o.revision) not in held]
    # e.g. revision 1 approved and ordered, revision 2 rejected: that quote's order is the
    # case invariants' business, not a missing or an unexpected order
    excused = {o.quote_id for o in truth.expected_orders} - {o.quote_id for o in expected}
    orders = [o for o in recorded.erp_orders if o.quote_id not in excused]
    refused = {c.deal_id for c in observed.cases if c.status == "rejected" and c.deal_id}
    calls = [
        c
        for c in recorded.crm_calls
        if not (c.object_id in refused and c.properties.get("status") == REJECTED_STATUS)
    ]
    commands = [
        d
        for d in observed.deal_commands
        if not (d.deal_id in refused and d.status == REJECTED_STATUS)
    ]
    return (
        replace(truth, expected_orders=expected),
        replace(recorded, crm_calls=calls, erp_orders=orders),
        replace(observed, deal_commands=commands),
    )


def _cases(truth: GroundTruth, recorded: Recorded, observed: Observed) -> list[InvariantResult]:
    """The exception desk: every case accounted for, and decisions did what they said, once."""
    unaccounted = [
        f"case {c.case_id} ({c.kind}) is {c.status} without a reason or team"
        for c in observed.cases
        if c.status not in _DECIDED and not (c.reason and c.team)
    ]
    orders: dict[str, list[int | None]] = defaultdict(list)
    for o in recorded.erp_orders:
        if o.quote_id:
            orders[o.quote_id].append(o.revision)
    rejected = [c for c in observed.cases if c.status == "rejected" and c.kind in _QUOTE_KINDS]
    ordered_anyway = [
        f"quote {c.quote_id} rev {c.revision}: rejected ({c.kind}) yet ordered"
        for c in rejected
        if c.quote_id and c.revision in orders.get(c.quote_id, [])
    ]
    approved = [c for c in observed.cases if c.status == "approved" and c.kind == "policy"]
    not_once = [
        f"quote {c.quote_id}: approved, {len(orders.get(c.quote_id or '', []))} orders"
        for c in approved
        if len(orders.get(c.quote_id or "", [])) != 1
    ]
    told: dict[str, set[str]] = defaultdict(set)
    for call in recorded.crm_calls:
        if call.object_type == "deals" and call.properties.get("status") == REJECTED_STATUS:
            told[call.object_id].add(call.idempotency_key or repr(call))
    # a deal whose revisions were rejected in several cases is told once per case
    rejected_of = Counter(c.deal_id for c in rejected if c.deal_id)
    untold = [
        f"deal {c.deal_id}: {len(told.get(c.deal_id or '', ()))} rejection write-backs "
        f"for {rejected_of[c.deal_id]} rejected case(s)"
        for c in rejected
        if c.deal_id and len(told.get(c.deal_id, ())) != rejected_of[c.deal_id]
    ]
    status_of = {c.case_id: c.status for c in observed.cases}
    meant: dict[str, tuple[str, ...]] = {
        "approve": ("approved", "linked"),
        "reject": ("rejected", "distinct"),
        "link": ("linked",),
        "distinct": ("distinct",),
    }
    unapplied = [
        f"case {d.case_id}: {d.action} by {d.by}, case is {status_of.get(d.case_id)}"
        for d in recorded.review_decisions
        if status_of.get(d.case_id) not in meant.get(d.action, ())
    ]
    return [
        _result(
            "cases_decided_or_open",
            "every case is decided, or open with its reason and owning team",
            len(observed.cases),
            len(observed.cases) - len(unaccounted),
            unaccounted,
        ),
        _result(
            "no_order_for_rejected_case",
            "no ERP order for a quote revision a person rejected",
            0,
            len(ordered_anyway),
            ordered_anyway,
        ),
        _result(
            "approved_overrides_ordered_once",
            "a quote approved over the commercial policy has exactly one ERP order",
            len(approved),
            len(approved) - len(not_once),
            not_once,
        ),
        _result(
            "rejections_written_back_once",
            "each rejected case's deal got the rejection (with its reason) exactly once",
            sum(1 for c in rejected if c.deal_id),
            sum(1 for c in rejected if c.deal_id) - len(untold),
            untold,
        ),
        _result(
            "desk_decisions_applied",
            "every decision the desk took (double clicks included) shows on its case, once",
            len(recorded.review_decisions),
            len(recorded.review_decisions) - len(unapplied),
            unapplied,
        ),
    ]


def render_results(results: list[InvariantResult], console: Console) -> None:
    """A table: invariant, expected, actual, pass/fail, first examples of what is wrong."""
    table = Table("invariant", "expected", "actual", "result", "examples", title="Invariants")
    for r in results:
        table.add_row(
            r.name,
            str(r.expected),
            str(r.actual),
            "[green]pass[/]" if r.passed else "[red]FAIL[/]",
            "\n".join(r.examples),
        )
    console.print(table)
    for r in results:
        if not r.breakdown:
            continue
        kinds = Table("finding kind", "injected", "found", "false", title=f"{r.name}: by kind")
        for k in r.breakdown:
            false = f"[red]{k.false}[/]" if k.false else "0"
            kinds.add_row(k.kind, str(k.injected), str(k.found), false)
        console.print(kinds)
        console.print(f"{r.name}: {r.note}")
