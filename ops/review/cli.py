"""``interlock review``: the exception desk from a shell (list, show and decide cases).

Thin commands over :mod:`ops.review.store` (reading cases, writing decisions),
:mod:`ops.review.queue` (filters, SLA) and :func:`contracts.review.decision_for` (what a
decision may be). The operator's name is ``--by`` or the OS user. Settings come from the
composition root (``interlock.cli``), which passes its loader.
"""

from __future__ import annotations

import getpass
import json
import time
from collections.abc import Callable
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.table import Table

from contracts.review import (
    OPEN_STATUSES,
    SEVERITIES,
    Case,
    CaseStatus,
    DecisionNotAllowedError,
    Severity,
    decision_for,
)
from interlock.commandline import require_kafka
from interlock.settings import Settings

__all__ = ["make_review_app"]

_STATUSES: tuple[str, ...] = (
    "open",
    "escalated",
    "approved",
    "rejected",
    "linked",
    "distinct",
    "closed",
)
_SEVERITY_STYLE = {"low": "dim", "medium": "", "high": "yellow", "critical": "bold red"}

CaseArg = Annotated[str, typer.Argument(help="Case id (or a unique prefix of 4+ characters).")]
ByOpt = Annotated[str | None, typer.Option("--by", help="Who decides (default: the OS user name).")]
DryRunOpt = Annotated[bool, typer.Option(help="Print the decision; send nothing.")]
FormatOpt = Annotated[str, typer.Option("--format", help="table or json.")]


def case_json(case: Case, now: float) -> dict[str, Any]:
    """A case as JSON, with its age and SLA countdown as a person reads them."""
    from ops.review.queue import format_age, format_sla

    doc = case.model_dump(mode="json")
    doc["age"] = format_age(case, now)
    doc["sla"] = format_sla(case, now)
    return doc


def make_review_app(load: Callable[[], Settings], console: Console | None = None) -> typer.Typer:
    """The ``review`` typer app; ``load`` returns the Settings (called once per command)."""
    out = console or Console()
    app = typer.Typer(
        help="The exception desk: list, show and decide cases (approve, reject, assign, link).",
        no_args_is_help=True,
    )

    def load_cases() -> tuple[Settings, dict[str, Case]]:
        from ops.review.store import read_cases, review_topics

        settings = require_kafka(load())
        cases_topic, _ = review_topics(settings)
        return settings, read_cases(settings.kafka.librdkafka(), cases_topic)

    def one(cases: dict[str, Case], ref: str) -> Case:
        from ops.review.queue import find_case

        try:
            return find_case(cases, ref)
        except LookupError as exc:
            out.print(f"[red]{_text(exc.args[0])}[/]")
            raise typer.Exit(1) from exc

    def check_format(fmt: str) -> None:
        if fmt not in ("table", "json"):
            out.print(f"[red]--format is table or json, not {fmt!r}[/]")
            raise typer.Exit(2)

    @app.command("list")
    def list_(
        team: Annotated[
            list[str] | None, typer.Option(help="Only this team's cases (repeatable).")
        ] = None,
        severity: Annotated[
            list[str] | None, typer.Option(help="low, medium, high or critical (repeatable).")
        ] = None,
        status: Annotated[
            list[str] | None,
            typer.Option(help="Case status (repeatable; default open and escalated; all: any)."),
        ] = None,
        older_than: Annotated[
            str | None, typer.Option(help="Only cases waiting at least this long (30m, 4h, 2d).")
        ] = None,
        fmt: FormatOpt = "table",
    ) -> None:
        """Cases waiting for a person, oldest first, with their SLA countdown."""
        from ops.review.queue import (
            QueueFilter,
            format_age,
            format_sla,
            parse_duration,
            select_cases,
        )

        check_format(fmt)
        bad = [s for s in severity or () if s not in SEVERITIES]
        bad += [s for s in status or () if s not in (*_STATUSES, "all")]
        if bad:
            out.print(f"[red]unknown severity or status: {', '.join(bad)}[/]")
            raise typer.Exit(2)
        try:
            age = parse_duration(older_than) if older_than else None
        except ValueError as exc:
            out.print(f"[red]--older-than: {exc}[/]")
            raise typer.Exit(2) from exc
        statuses: frozenset[CaseStatus] = OPEN_STATUSES
        if status:
            statuses = frozenset() if "all" in status else frozenset(cast(Any, status))
        where = QueueFilter(
            teams=frozenset(team or ()),
            severities=frozenset(cast(list[Severity], severity or [])),
            statuses=statuses,
            older_than_s=age,
        )
        _, cases = load_cases()
        now = time.time()
        chosen = select_cases(cases.values(), where, now)
        if fmt == "json":
            print(json.dumps([case_json(c, now) for c in chosen], indent=2))
            return
        table = Table("case", "kind", "team", "severity", "status", "age", "SLA", "summary")
        for c in chosen:
            sla = format_sla(c, now)
            table.add_row(
                c.case_id[:8],
                c.kind,
                c.team,
                f"[{_SEVERITY_STYLE[c.severity]}]{c.severity}[/]"
                if c.severity != "medium"
                else c.severity,
                c.status,
                format_age(c, now),
                f"[red]{sla}[/]" if sla.startswith("overdue") else sla,
                _text(c.summary),
            )
        out.print(table)
        out.print(f"{len(chosen)} case(s) of {len(cases)}")

    @app.command()
    def show(case: CaseArg, fmt: FormatOpt = "table") -> None:
        """One case: what it is about, its context (quote, accounts, match) and its decision."""
        check_format(fmt)
        _, cases = load_cases()
        found = one(cases, case)
        doc = case_json(found, time.time())
        if fmt == "json":
            print(json.dumps(doc, indent=2))
            return
        table = Table(show_header=False, title=found.case_id, title_justify="left")
        for field in ("kind", "reason", "status", "team", "severity", "assignee", "age", "sla"):
            table.add_row(field, _text(doc[field] if doc[field] is not None else "-"))
        for field in ("quote_id", "account_id", "deal_id", "correlation_id", "summary"):
            if doc[field]:
                table.add_row(field, _text(doc[field]))
        out.print(table)
        _show_context(out, found)
        if found.decision is not None:
            d = found.decision
            why = f" ({d.reason})" if d.reason else ""
            out.print(_text(f"decision: {d.action} by {d.by}{why}"))

    def decide(case: str, action: str, by: str | None, dry_run: bool, **fields: Any) -> None:
        from interlock.kafka import make_producer
        from ops.review.store import DecisionNotDeliveredError, DecisionSender, review_topics

        settings, cases = load_cases()
        found = one(cases, case)
        who = by or getpass.getuser()
        try:
            decision = decision_for(found, action, who, time.time(), **fields)
        except DecisionNotAllowedError as exc:
            out.print(f"[red]refused:[/] {_text(exc)}")
            raise typer.Exit(1) from exc
        what = _text(f"{decision.action} {found.case_id} by {decision.by}")
        if dry_run:
            print(json.dumps(decision.model_dump(mode="json"), indent=2))
            out.print(f"dry run: {what} not sent")
            return
        _, decisions_topic = review_topics(settings)
        sender = DecisionSender(
            make_producer(settings), decisions_topic, settings.console.delivery_timeout_s
        )
        try:
            sender.send(decision)
        except DecisionNotDeliveredError as exc:
            out.print(f"[red]not sent:[/] {exc}")
            raise typer.Exit(1) from exc
        out.print(f"sent: {what} (decision {decision.decision_id}); the worker applies it")

    @app.command()
    def approve(
        case: CaseArg,
        reason: Annotated[str | None, typer.Option(help="Why (kept in the audit).")] = None,
        by: ByOpt = None,
        dry_run: DryRunOpt = False,
    ) -> None:
        """Approve a case (an account match: link to the best candidate)."""
        decide(case, "approve", by, dry_run, reason=reason)

    @app.command()
    def reject(
        case: CaseArg,
        reason: Annotated[str, typer.Option(help="Why (written back to the CRM deal).")],
        by: ByOpt = None,
        dry_run: DryRunOpt = False,
    ) -> None:
        """Reject a case with a reason: no order, and the CRM deal is told why."""
        decide(case, "reject", by, dry_run, reason=reason)

    @app.command()
    def assign(
        case: CaseArg,
        to: Annotated[str, typer.Option("--to", help="Who takes the case over.")],
        by: ByOpt = None,
        dry_run: DryRunOpt = False,
    ) -> None:
        """Give a case to someone (also allowed on a decided case)."""
        decide(case, "assign", by, dry_run, assignee=to)

    @app.command()
    def link(
        case: CaseArg,
        to: Annotated[
            str | None, typer.Option("--to", help="The candidate account (default: the best).")
        ] = None,
        reason: Annotated[str | None, typer.Option(help="Why (kept in the audit).")] = None,
        by: ByOpt = None,
        dry_run: DryRunOpt = False,
    ) -> None:
        """Account match: the incoming account is this candidate (link them)."""
        decide(case, "link", by, dry_run, target=to, reason=reason)

    @app.command()
    def distinct(
        case: CaseArg,
        reason: Annotated[str | None, typer.Option(help="Why (kept in the audit).")] = None,
        by: ByOpt = None,
        dry_run: DryRunOpt = False,
    ) -> None:
        """Account match: these are different accounts (keep them apart)."""
        decide(case, "distinct", by, dry_run, reason=reason)

    return app


def _show_context(out: Console, case: Case) -> None:
    """The case's context as tables: quote lines, accounts side by side, match candidates."""
    ctx = case.context
    if ctx.quote is not None:
        q = ctx.quote
        table = Table(
            "#", "sku", "name", "qty", "unit price", "discount %",
            title=f"quote rev {q.revision}: {q.total} {q.currency} "
            f"(discount {q.discount_pct:g}%)",
            title_justify="left",
        )  # fmt: skip
        for line in q.lines:
            table.add_row(
                str(line.line_number),
                _text(line.sku),
                _text(line.name),
                f"{line.quantity:g}",
                _text(line.unit_price),
                f"{line.discount_pct:g}",
            )
        out.print(table)
    if ctx.accounts is not None:
        table = Table("field", "CRM", "ERP", "owner", title="account", title_justify="left")
        for f in ctx.accounts.fields:
            differs = f.crm is not None and f.erp is not None and f.crm != f.erp
            table.add_row(
                _text(f.name),
                _text(f.crm),
                _text(f.erp),
                (f.owner or "-") + (" [yellow]differs[/]" if differs else ""),
            )
        out.print(table)
    if ctx.match is not None:
        m = ctx.match
        table = Table(
            "candidate", "name", "domain", "score", "evidence",
            title=f"match score {m.score:.2f} (threshold {m.threshold:.2f})",
            title_justify="left",
        )  # fmt: skip
        for c in m.candidates:
            evidence = "; ".join(f"{k}: {v}" for k, v in c.evidence.items())
            table.add_row(
                _text(c.account_id),
                _text(c.name),
                _text(c.domain),
                f"{c.score:.2f}",
                _text(evidence),
            )
        out.print(table)
    if ctx.details:
        out.print(_text("details: " + json.dumps(ctx.details, default=str)))


def _text(value: object) -> str:
    """A field value as plain text (rich markup in CRM data must not be interpreted)."""
    from rich.markup import escape

    return escape("" if value is None else str(value))
