"""What the console's pages show, computed from cases: pure functions, no HTTP and no Kafka.

The handlers in :mod:`ops.review.console.app` parse the request, call these, and render the
result through autoescaping templates; everything that comes from a case (CRM data, untrusted)
reaches the page only as template data, never as markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from contracts.review import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    SEVERITIES,
    Case,
    CaseStatus,
    Decision,
    QuoteLineContext,
    Severity,
)
from ops.review.queue import QueueFilter, decision_state, format_age, format_sla, parse_duration
from ops.review.users import User, can_decide

__all__ = [
    "AGE_CHOICES",
    "STATUS_CHOICES",
    "BadQueryError",
    "CaseView",
    "QueueQuery",
    "QueueRow",
    "case_view",
    "line_amount",
    "parse_queue_query",
    "queue_rows",
]

AGE_CHOICES: dict[str, str] = {
    "": "any age",
    "1h": "waiting over 1 h",
    "4h": "waiting over 4 h",
    "1d": "waiting over 1 day",
    "overdue": "past its SLA",
}
STATUS_CHOICES: dict[str, frozenset[CaseStatus]] = {
    "open": OPEN_STATUSES,
    "decided": CLOSED_STATUSES,
    "all": frozenset(),
}
_MAX_PARAM = 100


class BadQueryError(ValueError):
    """A query parameter the console does not understand (answered with 400)."""


@dataclass(frozen=True)
class QueueQuery:
    """The queue's filter as the form shows it, and as :class:`QueueFilter` applies it."""

    team: str
    severity: str
    age: str
    status: str
    where: QueueFilter


def parse_queue_query(params: Mapping[str, str], user: User) -> QueueQuery:
    """The filter of ``/queue?team=&severity=&age=&status=``.

    ``team`` is ``mine`` (default: the user's teams; every team for a user without one),
    ``all`` or a team name; ``severity`` is a minimum (``high``: high and critical).

    Raises:
        BadQueryError: a value outside its choices.
    """
    team = params.get("team", "mine")
    severity = params.get("severity", "")
    age = params.get("age", "")
    status = params.get("status", "open")
    if any(len(v) > _MAX_PARAM for v in (team, severity, age, status)):
        raise BadQueryError("a query parameter is too long")
    if severity and severity not in SEVERITIES:
        raise BadQueryError(f"severity is one of {', '.join(SEVERITIES)}")
    if age not in AGE_CHOICES:
        raise BadQueryError(f"age is one of {', '.join(a for a in AGE_CHOICES if a)}")
    if status not in STATUS_CHOICES:
        raise BadQueryError(f"status is one of {', '.join(STATUS_CHOICES)}")
    if team == "mine":
        teams = user.teams
    elif team == "all" or not team:
        teams = frozenset()
    else:
        teams = frozenset({team})
    severities: frozenset[Severity] = (
        frozenset(SEVERITIES[SEVERITIES.index(severity) :]) if severity else frozenset()
    )
    where = QueueFilter(
        teams=teams,
        severities=severities,
        statuses=STATUS_CHOICES[status],
        older_than_s=parse_duration(age) if age and age != "overdue" else None,
        overdue=age == "overdue",
    )
    return QueueQuery(team, severity, age, status, where)


@dataclass(frozen=True)
class QueueRow:
    """One line of the queue."""

    case_id: str
    short_id: str
    kind: str
    team: str
    severity: str
    status: str
    escalated: bool
    overdue: bool
    age: str
    sla: str
    summary: str
    assignee: str | None


def queue_rows(cases: Iterable[Case], where: QueueFilter, now: float) -> list[QueueRow]:
    """The queue, oldest first, with age and SLA countdown."""
    from ops.review.queue import select_cases

    return [
        QueueRow(
            case_id=c.case_id,
            short_id=c.case_id[:8],
            kind=c.kind.replace("_", " "),
            team=c.team,
            severity=c.severity,
            status=c.status,
            escalated=c.status == "escalated",
            overdue=c.is_open and c.sla_due <= now,
            age=format_age(c, now),
            sla=format_sla(c, now) if c.is_open else "-",
            summary=c.summary,
            assignee=c.assignee,
        )
        for c in select_cases(cases, where, now)
    ]


def line_amount(line: QuoteLineContext) -> str:
    """quantity x unit price less the line discount, to the cent; ``-`` when not a number."""
    try:
        gross = Decimal(str(line.quantity)) * Decimal(line.unit_price)
        net = gross * (Decimal(100) - Decimal(str(line.discount_pct))) / Decimal(100)
    except (InvalidOperation, ValueError):
        return "-"
    return f"{net.quantize(Decimal('0.01'))}"


@dataclass(frozen=True)
class CaseView:
    """Everything the case page shows beside the case itself."""

    case: Case
    age: str
    sla: str
    overdue: bool
    can_decide: bool
    actions: list[str]
    decision_state: str | None
    sent: Decision | None
    line_amounts: list[str] = field(default_factory=list)
    details: list[tuple[str, str]] = field(default_factory=list)


def _actions(case: Case) -> list[str]:
    """The decisions the case takes now (:func:`contracts.review.decision_for` decides)."""
    if case.status in CLOSED_STATUSES:
        return ["assign"]
    if case.kind == "account_match":
        return ["link", "distinct", "reject", "assign"]
    return ["approve", "reject", "assign"]


def _detail_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)


def case_view(case: Case, user: User, now: float, sent: Decision | None) -> CaseView:
    """The case page's data for ``user`` (who may or may not decide it)."""
    quote = case.context.quote
    return CaseView(
        case=case,
        age=format_age(case, now),
        sla=format_sla(case, now) if case.is_open else "-",
        overdue=case.is_open and case.sla_due <= now,
        can_decide=can_decide(user, case),
        actions=_actions(case),
        decision_state=decision_state(case, sent),
        sent=sent if sent is not None and sent.case_id == case.case_id else None,
        line_amounts=[line_amount(line) for line in quote.lines] if quote else [],
        details=[(k, _detail_text(v)) for k, v in sorted(case.context.details.items())],
    )
