"""``interlock reconcile``: report open drift, repair what can be re-driven, check the APIs.

Thin commands: what ``audit.reconciliation`` says is folded in :mod:`ops.reconcile.model`,
repairs are planned and sent by :mod:`ops.reconcile.repair`, the systems' own APIs are read
and compared by :mod:`ops.reconcile.apis`. Settings come from the composition root.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from interlock.commandline import require_kafka
from interlock.settings import Settings

__all__ = ["make_reconcile_app"]

Format = Literal["table", "csv", "json"]
PrefixOpt = Annotated[
    str | None, typer.Option(help="Topic prefix (default: the processors' setting).")
]
FormatOpt = Annotated[str, typer.Option("--format", help="table, csv or json.")]


def make_reconcile_app(load: Callable[[], Settings], console: Console | None = None) -> typer.Typer:
    """The ``reconcile`` typer app; ``load`` returns the Settings (called once per command)."""
    out = console or Console()
    app = typer.Typer(
        help="Reconciliation: open drift between the CRM and the ERP, repair, API check.",
        no_args_is_help=True,
    )

    def settings() -> Settings:
        return require_kafka(load())

    def ledger(s: Settings, prefix: str | None) -> Any:
        from contracts.reconciliation import decode_record
        from ops.dlq.store import read_topic
        from ops.reconcile.model import fold_records

        topic = _prefix(s, prefix) + "audit.reconciliation"
        records = [decode_record(r.value) for r in read_topic(s.kafka.librdkafka(), topic)]
        return fold_records(r for r in records if r is not None)

    def show(findings: list[Any], fmt: str, title: str) -> None:
        from ops.reconcile.model import render_csv, render_json

        now = datetime.now(UTC)
        if fmt == "json":
            print(render_json(findings, now))
        elif fmt == "csv":
            print(render_csv(findings, now), end="")
        elif fmt == "table":
            table = Table("finding id", "kind", "subject", "age", "details", title=title)
            for f in findings:
                details = json.dumps(dict(f.details), sort_keys=True, default=str)
                table.add_row(f.finding_id, f.kind, f.subject, _age(f.age_s(now)), details)
            out.print(table)
        else:
            out.print(f"[red]unknown format {fmt!r}[/]: table, csv or json")
            raise typer.Exit(2)

    @app.command()
    def report(
        since: Annotated[
            str | None, typer.Option(help="Opened at or after: ISO-8601 or a duration ago (24h).")
        ] = None,
        kind: Annotated[
            list[str] | None, typer.Option("--kind", "-k", help="Drift kind (repeatable).")
        ] = None,
        fmt: FormatOpt = "table",
        prefix: PrefixOpt = None,
    ) -> None:
        """Open drift findings from audit.reconciliation: by kind, with ids and age."""
        from ops.dlq.model import parse_time

        try:
            kinds = [_kind(k) for k in kind or ()]
            start = parse_time(since, datetime.now(UTC)) if since else None
        except ValueError as exc:
            out.print(f"[red]{exc}[/]")
            raise typer.Exit(2) from exc
        view = ledger(settings(), prefix)
        findings = view.selected(kinds, start)
        show(findings, fmt, "open reconciliation findings")
        if fmt == "table":
            counts = ", ".join(f"{k} {n}" for k, n in view.by_kind(findings).items())
            out.print(f"{len(findings)} open" + (f": {counts}" if counts else ""))

    @app.command()
    def repair(
        kind: Annotated[str, typer.Option("--kind", "-k", help="Drift kind to repair.")],
        dry_run: Annotated[
            bool, typer.Option(help="Change nothing on any topic; print the plan.")
        ] = False,
        prefix: PrefixOpt = None,
    ) -> None:
        """Re-drive the create-order or update-deal command of each open finding of KIND."""
        from contracts.reconciliation import REPAIRABLE, parse_kind
        from contracts.serde import make_deserializer, make_serializer
        from interlock.kafka import make_producer
        from interlock.serializers import registry_client
        from ops.dlq.store import read_topic
        from ops.reconcile.repair import plan_repairs, send_repairs

        try:
            wanted = parse_kind(kind)
        except ValueError as exc:
            out.print(f"[red]{exc}[/]")
            raise typer.Exit(2) from exc
        if wanted not in REPAIRABLE:
            out.print(f"[red]{wanted} is not repaired by re-driving a command[/]: a person decides")
            raise typer.Exit(2)
        s = settings()
        topic_prefix = _prefix(s, prefix)
        view = ledger(s, prefix)
        registry = registry_client(s)
        serializer = make_serializer(
            "order",
            wire_format=s.wire_format,
            registry=registry,
            subject_strategy=s.schema_registry.subject_strategy,
        )

        def encode(event: Any, topic: str) -> bytes:
            from confluent_kafka.serialization import MessageField, SerializationContext

            return serializer(event, SerializationContext(topic, MessageField.VALUE))

        conf = s.kafka.librdkafka()
        items = plan_repairs(
            view,
            view.selected([str(wanted)]),
            topic_prefix,
            lambda topic: read_topic(conf, topic),
            make_deserializer(registry=registry).decode,
            encode,
        )
        table = Table("finding id", "subject", "command", "event id", "action", title="repair")
        for item in items:
            action = item.skipped or ("would re-drive" if dry_run else "re-driven")
            table.add_row(item.finding.finding_id, item.finding.subject, item.command,
                          item.event_id, action)  # fmt: skip
        if not dry_run:
            audit = topic_prefix + "audit.reconciliation"
            producer = make_producer(s, **{"enable.idempotence": False})
            sent = send_repairs(producer, items, audit, time.time())
        out.print(table)
        todo = [i for i in items if i.record is not None]
        if dry_run:
            out.print(f"dry run: {len(todo)} command(s) would be re-driven; nothing was written")
        else:
            out.print(f"{len(sent)} command(s) re-driven, recorded on {audit}")

    @app.command()
    def check(
        against_apis: Annotated[
            bool,
            typer.Option(
                "--against-apis",
                help="Page through the ERP's orders and the CRM's deals and compare them with "
                "the order and update-deal commands: finds drift that never produced an event "
                "(a deleted deal, an order edited unseen, a write-back the CRM lost).",
            ),
        ] = False,
        erp_url: Annotated[
            str | None, typer.Option(help="ERP API base URL (default: the sinks' setting).")
        ] = None,
        crm_url: Annotated[
            str | None, typer.Option(help="CRM API base URL (default: the sinks' setting).")
        ] = None,
        page_size: Annotated[int, typer.Option(min=1, help="Records per API page.")] = 200,
        fmt: FormatOpt = "table",
        prefix: PrefixOpt = None,
    ) -> None:
        """Exit 1 if the CRM and the ERP disagree: open findings, or drift in their APIs."""
        s = settings()
        if not against_apis:
            findings = ledger(s, prefix).selected()
            show(findings, fmt, "open reconciliation findings")
            raise typer.Exit(1 if findings else 0)
        from ops.reconcile.apis import sweep_apis

        erp = erp_url or s.sinks.erp.base_url
        crm = crm_url or s.sinks.crm.base_url
        if not erp or not crm:
            out.print("[red]--against-apis needs the ERP and CRM URLs[/] (--erp-url, --crm-url)")
            raise typer.Exit(2)
        with _progress(out) as progress:
            tasks = {
                "orders": progress.add_task("ERP orders", total=None),
                "deals": progress.add_task("CRM deals", total=None),
            }
            found, orders, deals = sweep_apis(
                s,
                _prefix(s, prefix),
                erp,
                crm,
                page_size,
                lambda what, n: progress.advance(tasks[what], n),
            )
        show(found, fmt, f"drift in the APIs ({orders} orders, {deals} deals)")
        raise typer.Exit(1 if found else 0)

    return app


def _prefix(s: Settings, prefix: str | None) -> str:
    return prefix if prefix is not None else s.processors.topic_prefix


def _kind(text: str) -> str:
    from contracts.reconciliation import parse_kind

    return str(parse_kind(text))


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} read"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
