"""The queue of cases as a person sees it: filtered, oldest first, with the time left to its SLA.

Pure functions over :class:`contracts.review.Case`, shared by ``interlock review`` and the
console, so that both show the same queue for the same filter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from contracts.review import OPEN_STATUSES, Case, CaseStatus, Decision, Severity

__all__ = [
    "AmbiguousCaseError",
    "CaseNotFoundError",
    "QueueFilter",
    "decision_state",
    "find_case",
    "format_age",
    "format_sla",
    "parse_duration",
    "select_cases",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class CaseNotFoundError(LookupError):
    """No case has this id (or id prefix)."""


class AmbiguousCaseError(LookupError):
    """More than one case starts with this prefix: the message lists some of them."""


@dataclass(frozen=True)
class QueueFilter:
    """Which cases a queue shows; an empty set means "any"."""

    teams: frozenset[str] = frozenset()
    severities: frozenset[Severity] = frozenset()
    statuses: frozenset[CaseStatus] = OPEN_STATUSES
    older_than_s: float | None = None
    """Only cases opened at least this long ago."""
    overdue: bool = False
    """Only cases past their SLA deadline."""


def select_cases(cases: Iterable[Case], where: QueueFilter, now: float) -> list[Case]:
    """The cases ``where`` admits, oldest first (the one waiting longest is decided first)."""
    chosen = [
        c
        for c in cases
        if (not where.teams or c.team in where.teams)
        and (not where.severities or c.severity in where.severities)
        and (not where.statuses or c.status in where.statuses)
        and (where.older_than_s is None or now - c.opened_at >= where.older_than_s)
        and (not where.overdue or c.sla_due <= now)
    ]
    return sorted(chosen, key=lambda c: (c.opened_at, c.case_id))


def parse_duration(text: str) -> float:
    """Seconds of ``30m``, ``4h``, ``2d`` or ``90s``.

    Raises:
        ValueError: not a number followed by one of s, m, h, d.
    """
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30m, 4h or 2d")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def _span(seconds: float) -> str:
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"


def format_age(case: Case, now: float) -> str:
    """How long the case has waited, e.g. ``3h 05m``."""
    return _span(max(0.0, now - case.opened_at))


def format_sla(case: Case, now: float) -> str:
    """The SLA countdown: ``2h 05m left``, or ``overdue 15m`` once the deadline passed."""
    left = case.sla_due - now
    return f"{_span(left)} left" if left > 0 else f"overdue {_span(left)}"


def find_case(cases: Mapping[str, Case], ref: str) -> Case:
    """The case whose id is ``ref``, or the only one whose id starts with it (at least 4 chars).

    Raises:
        CaseNotFoundError: no such case.
        AmbiguousCaseError: the prefix names several cases.
    """
    ref = ref.strip()
    if ref in cases:
        return cases[ref]
    if len(ref) >= 4:
        matches = sorted(cid for cid in cases if cid.startswith(ref))
        if len(matches) == 1:
            return cases[matches[0]]
        if matches:
            shown = ", ".join(matches[:5])
            raise AmbiguousCaseError(f"{ref!r} names {len(matches)} cases: {shown}")
    raise CaseNotFoundError(f"no case {ref!r}")


def decision_state(case: Case, sent: Decision | None) -> Literal["applied", "pending"] | None:
    """Whether a decision this desk sent has been applied by the worker yet.

    Applied once the case's latest state carries that decision (the worker writes it back with
    the new status); pending until then. None when nothing was sent.
    """
    if sent is None or sent.case_id != case.case_id:
        return None
    if case.decision is not None and case.decision.decision_id == sent.decision_id:
        return "applied"
    return "pending"
