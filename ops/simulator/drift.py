"""Injected reconciliation drift: when (from the seed), what, and whether it was found. Pure.

With ``--drift`` the scenario injects, at seeded moments, what people and flaky APIs do to the
two systems behind Interlock's back; reconciliation must find exactly that, nothing less and
nothing more. Each kind of drift is meant to cause one kind of finding, on one subject:

- ``erp_order_edited``: a person edits an order's amounts in the ERP (a discount), with its
  CDC change: ``RECON_ORDER_MISMATCH`` on the quote id; worker and API sweep.
- ``erp_order_deleted``: a person deletes a confirmed order in the ERP (CDC delete):
  ``RECON_ORDER_MISSING`` on the quote id; worker and API sweep.
- ``erp_order_by_hand``: a person keys in an order with no quote for an existing customer:
  ``RECON_ORDER_WITHOUT_QUOTE`` on the ERP order number; worker and API sweep.
- ``crm_writeback_lost``: the CRM answers 200 to the deal's INVOICED write-backs and applies
  none (nor tells anyone): ``RECON_CRM_VALUE_OVERWRITTEN`` on the deal id; API sweep only.
- ``crm_deal_deleted``: a person deletes the deal once it shows INVOICED, no webhook:
  ``RECON_DEAL_MISSING`` on the deal id; API sweep only.

The worker sees what produces an event (change data capture); the last two produce none, and
only ``reconcile check --against-apis`` (the simulator's sweep of its fakes) can find them.

:class:`DriftSchedule` says which of the quotes eligible for drift (valid, accepted once, in
order) gets which kind: rounds of every kind in a seeded order, a seeded gap of quotes before
each. It has its own random stream, so the rest of the story is the same with or without drift.
:func:`score` compares findings with the injected cases: per finding kind, how many cases were
injected, how many found, and how many findings name drift nobody injected.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from contracts.errors import Reason
from ops.simulator.truth import DriftInjected

__all__ = [
    "API_ONLY",
    "DRIFT_KINDS",
    "FINDING_OF",
    "DriftKind",
    "DriftMix",
    "DriftSchedule",
    "DriftScore",
    "Expected",
    "FindingSeen",
    "KindScore",
    "expected_findings",
    "score",
]

DriftKind = Literal[
    "erp_order_edited",
    "erp_order_deleted",
    "erp_order_by_hand",
    "crm_writeback_lost",
    "crm_deal_deleted",
]
DRIFT_KINDS: Final[tuple[DriftKind, ...]] = (
    "erp_order_edited",
    "erp_order_deleted",
    "erp_order_by_hand",
    "crm_writeback_lost",
    "crm_deal_deleted",
)
FINDING_OF: Final[dict[str, Reason]] = {
    "erp_order_edited": Reason.RECON_ORDER_MISMATCH,
    "erp_order_deleted": Reason.RECON_ORDER_MISSING,
    "erp_order_by_hand": Reason.RECON_ORDER_WITHOUT_QUOTE,
    "crm_writeback_lost": Reason.RECON_CRM_VALUE_OVERWRITTEN,
    "crm_deal_deleted": Reason.RECON_DEAL_MISSING,
}
"""The finding each drift kind must cause."""
API_ONLY: Final = frozenset({"crm_writeback_lost", "crm_deal_deleted"})
"""Drift that produces no event: only a sweep of the APIs can find it."""


@dataclass(frozen=True)
class DriftMix:
    """How much drift: on average one case per ``every`` eligible quotes, of ``kinds``."""

    every: int = 6
    kinds: tuple[DriftKind, ...] = DRIFT_KINDS

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError("drift every must be at least 1")
        unknown = set(self.kinds) - set(DRIFT_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"drift kinds are some of {', '.join(DRIFT_KINDS)}")


class DriftSchedule:
    """Which eligible quote gets which drift, and the drift's details, from the seed alone."""

    def __init__(self, seed: int, mix: DriftMix | None = None) -> None:
        self.mix = mix or DriftMix()
        self._rng = random.Random(f"interlock-drift-{seed}")
        self._targets = self._generate()
        self._next = next(self._targets)

    def _generate(self) -> Iterator[tuple[int, DriftKind, dict[str, Any]]]:
        position = 0
        while True:
            kinds = list(self.mix.kinds)
            self._rng.shuffle(kinds)
            for kind in kinds:
                position += self._rng.randint(1, 2 * self.mix.every - 1)
                yield position, kind, self._change(kind)

    def _change(self, kind: DriftKind) -> dict[str, Any]:
        if kind == "erp_order_edited":
            return {"discount_pct": self._rng.choice((5, 10, 15, 20, 25))}
        if kind == "erp_order_by_hand":
            return {"subtotal_minor": self._rng.randrange(10_000, 500_000)}
        return {}

    def at(self, quote_number: int) -> tuple[DriftKind, dict[str, Any]] | None:
        """The drift for the ``quote_number``-th eligible quote (asked in increasing order)."""
        position, kind, change = self._next
        while position < quote_number:  # a number skipped: its drift is not injected
            position, kind, change = self._next = next(self._targets)
        if position != quote_number:
            return None
        self._next = next(self._targets)
        return kind, change

    def plan(self, quotes: int) -> list[tuple[int, DriftKind, dict[str, Any]]]:
        """The drift of the first ``quotes`` eligible quotes (a fresh schedule, same seed)."""
        out = []
        for n in range(1, quotes + 1):
            found = self.at(n)
            if found is not None:
                out.append((n, *found))
        return out


# -- was it found? ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Expected:
    """The finding an injected case must cause."""

    case_id: str
    drift: str
    kind: str
    subject: str
    api_only: bool


@dataclass(frozen=True)
class FindingSeen:
    """A finding as recorded (on ``audit.reconciliation``, or by the sweep of the APIs)."""

    finding_id: str
    kind: str
    subject: str


def expected_findings(injected: Iterable[DriftInjected]) -> list[Expected]:
    """The finding each injected case must cause, in the order they were injected."""
    return [
        Expected(c.case_id, c.kind, str(FINDING_OF[c.kind]), c.subject, c.kind in API_ONLY)
        for c in injected
        if c.kind in FINDING_OF
    ]


@dataclass(frozen=True)
class KindScore:
    """One finding kind: cases injected, of them found, and findings nobody injected."""

    kind: str
    injected: int
    found: int
    false: int


@dataclass(frozen=True)
class DriftScore:
    """Findings against injected cases: recall (cases found) and precision (true findings)."""

    expected: int
    found: int
    findings: int
    true_findings: int
    by_kind: tuple[KindScore, ...]
    missed: tuple[str, ...] = ()
    false: tuple[str, ...] = ()
    details: dict[str, int] = field(default_factory=dict)

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0

    @property
    def precision(self) -> float:
        return self.true_findings / self.findings if self.findings else 1.0

    @property
    def exact(self) -> bool:
        return not self.missed and not self.false


def score(
    expected: Iterable[Expected],
    findings: Iterable[FindingSeen],
    also_injected: Iterable[Expected] = (),
) -> DriftScore:
    """Compare findings with what was injected.

    A case is found when some finding has its kind and subject (a lost write-back may differ
    in several fields: several findings, one case). A finding is false when it names no
    injected case, of ``expected`` or of ``also_injected`` (drift this reader was not expected
    to see, e.g. the worker finding what only the API sweep must: not missed, not false).
    """
    wanted = list(expected)
    injected = {(e.kind, e.subject) for e in (*wanted, *also_injected)}
    seen: dict[str, FindingSeen] = {}
    for f in findings:
        seen.setdefault(f.finding_id, f)
    named = {(f.kind, f.subject) for f in seen.values()}
    missed = [e for e in wanted if (e.kind, e.subject) not in named]
    false = [f for f in seen.values() if (f.kind, f.subject) not in injected]
    kinds = sorted({e.kind for e in wanted} | {f.kind for f in false})
    per_kind = tuple(
        KindScore(
            kind,
            sum(1 for e in wanted if e.kind == kind),
            sum(1 for e in wanted if e.kind == kind and (e.kind, e.subject) in named),
            sum(1 for f in false if f.kind == kind),
        )
        for kind in kinds
    )
    return DriftScore(
        expected=len(wanted),
        found=len(wanted) - len(missed),
        findings=len(seen),
        true_findings=len(seen) - len(false),
        by_kind=per_kind,
        missed=tuple(f"{e.drift} {e.case_id}: no {e.kind} for {e.subject}" for e in missed),
        false=tuple(f"{f.kind} {f.subject} was not injected" for f in false),
        details=dict(Counter(e.drift for e in wanted)),
    )
