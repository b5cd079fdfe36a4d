"""``interlock dlq``: find, inspect, count, replay and purge dead letters.

The commands are thin: reading is in :mod:`ops.dlq.store`, selection and stats in
:mod:`ops.dlq.model`, replay in :mod:`ops.dlq.replay`, purge in :mod:`ops.dlq.purge`.
Settings come from the composition root (``interlock.cli``), which passes its loader.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from interlock.commandline import require_kafka
from interlock.settings import Settings

__all__ = ["DlqCommands", "make_dlq_app"]

TopicArg = Annotated[str, typer.Argument(help="dlq.<topic>, or <topic>.")]
ReasonOpt = Annotated[
    list[str] | None, typer.Option("--reason", "-r", help="Reason code (repeatable).")
]
SinceOpt = Annotated[
    str | None, typer.Option(help="Failed at or after: ISO-8601, or a duration ago (2h, 7d).")
]
UntilOpt = Annotated[str | None, typer.Option(help="Failed before: ISO-8601 or a duration ago.")]
KeyOpt = Annotated[str | None, typer.Option(help="Only records with this key (UTF-8).")]
LimitOpt = Annotated[int | None, typer.Option(min=1, help="At most N records, oldest first.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
DryRunOpt = Annotated[bool, typer.Option(help="Change nothing on any topic; print the plan.")]


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


class DlqCommands:
    """The ``dlq`` commands; ``load`` returns the Settings (called once per command)."""

    def __init__(self, load: Callable[[], Settings], console: Console | None = None) -> None:
        self._load = load
        self.out = console or Console()

    def settings(self) -> Settings:
        return require_kafka(self._load())

    def where(
        self,
        reason: list[str] | None,
        since: str | None,
        until: str | None,
        key: str | None,
        limit: int | None,
    ) -> Any:
        from ops.dlq.model import DeadLetterFilter, parse_time

        now = datetime.now(UTC)
        try:
            return DeadLetterFilter(
                reasons=frozenset(reason or ()),
                since=parse_time(since, now) if since else None,
                until=parse_time(until, now) if until else None,
                key=key,
                limit=limit,
            )
        except ValueError as exc:
            self.out.print(f"[red]{exc}[/]")
            raise typer.Exit(2) from exc

    def fail_on(self, errors: list[str]) -> None:
        """Show the first delivery errors and exit 1, when there are any."""
        if errors:
            self.out.print(f"[red]{len(errors)} delivery error(s):[/] " + "; ".join(errors[:5]))
            raise typer.Exit(1)

    def load_letters(self, s: Settings, topic: str) -> tuple[str, list[Any], Any]:
        from ops.dlq.model import normalise_topic
        from ops.dlq.store import read_audit, read_dead_letters, topic_partitions

        name = normalise_topic(topic)
        conf = s.kafka.librdkafka()
        partitions = topic_partitions(conf, name)
        if not partitions:
            self.out.print(f"[red]no such dead-letter topic:[/] {name}")
            raise typer.Exit(1)
        audit = read_audit(conf, s.dlq.audit_topic, s.dlq.purge_topic)
        return name, read_dead_letters(conf, name, partitions), audit

    def list_(self, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        """Dead-letter topics with exact counts by reason (purged ones hidden)."""
        from ops.dlq.model import DeadLetterFilter, select, topic_stats
        from ops.dlq.store import list_dlq_topics, read_audit, read_dead_letters

        s = self.settings()
        conf = s.kafka.librdkafka()
        audit = read_audit(conf, s.dlq.audit_topic, s.dlq.purge_topic)
        now = datetime.now(UTC)
        rows = []
        for name, partitions in list_dlq_topics(conf).items():
            letters = read_dead_letters(conf, name, partitions)
            kept = select(letters, DeadLetterFilter(), hidden=audit.purged)
            rows.append(topic_stats(name, kept, now))
        if as_json:
            print(json.dumps([r.as_json() for r in rows], indent=2))
            return
        table = Table("dead-letter topic", "count", "by reason", "oldest")
        for r in rows:
            reasons = ", ".join(f"{x.reason} {x.count}" for x in r.by_reason)
            table.add_row(r.topic, str(r.count), reasons, r.oldest.isoformat() if r.oldest else "")
        self.out.print(table)

    def show(
        self,
        topic: TopicArg,
        reason: ReasonOpt = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        key: KeyOpt = None,
        limit: LimitOpt = 20,
        as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
        stacktrace: Annotated[bool, typer.Option(help="Include stack traces.")] = False,
    ) -> None:
        """Dead letters, decoded through the contracts where possible, with their error headers."""
        from ops.dlq.model import select
        from ops.dlq.render import letter_json

        _name, letters, audit = self.load_letters(self.settings(), topic)
        chosen = select(letters, self.where(reason, since, until, key, limit), hidden=audit.purged)
        for letter in chosen:
            doc = letter_json(letter, with_stacktrace=stacktrace)
            doc["replayed"] = audit.replayed.get(letter.coordinate, 0)
            if as_json:
                print(json.dumps(doc, sort_keys=True, default=str))
                continue
            table = Table(show_header=False, title=letter.coordinate, title_justify="left")
            for field in ("reason", "failed_at", "original_topic", "key", "value_format"):
                table.add_row(field, str(doc[field]))
            table.add_row("value", json.dumps(doc["value"], indent=1, default=str))
            for name, text in doc["dlq"].items():
                table.add_row(f"dlq.{name}", str(text))
            table.add_row("headers", json.dumps(doc["headers"], default=str))
            table.add_row("replayed", str(doc["replayed"]))
            self.out.print(table)
        if not as_json:
            self.out.print(f"{len(chosen)} dead letter(s)")

    def stats(
        self,
        topic: Annotated[str | None, typer.Argument(help="One topic (default: all).")] = None,
        reason: ReasonOpt = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        key: KeyOpt = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Counts by reason, age of the oldest, and rate per minute/hour over the window."""
        from ops.dlq.model import normalise_topic, select, topic_stats
        from ops.dlq.store import list_dlq_topics, read_audit, read_dead_letters

        s = self.settings()
        conf = s.kafka.librdkafka()
        filt = self.where(reason, since, until, key, None)
        audit = read_audit(conf, s.dlq.audit_topic, s.dlq.purge_topic)
        topics: Mapping[str, list[int] | None] = (
            {normalise_topic(topic): None} if topic else list_dlq_topics(conf)
        )
        end = filt.until or datetime.now(UTC)
        rows = [
            topic_stats(
                n,
                select(read_dead_letters(conf, n, parts), filt, hidden=audit.purged),
                end,
                filt.since,
            )
            for n, parts in topics.items()
        ]
        if as_json:
            print(json.dumps([r.as_json() for r in rows], indent=2))
            return
        table = Table("topic", "reason", "count", "oldest age", "per minute", "per hour")
        for r in rows:
            age = r.oldest_age
            table.add_row(
                r.topic,
                "(all)",
                str(r.count),
                str(timedelta(seconds=int(age.total_seconds()))) if age else "",
                f"{r.rate(timedelta(minutes=1)):.2f}",
                f"{r.rate(timedelta(hours=1)):.1f}",
            )
            for x in r.by_reason:
                table.add_row("", x.reason, str(x.count), "", "", "")
        self.out.print(table)

    def replay(
        self,
        topic: TopicArg,
        reason: ReasonOpt = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        key: KeyOpt = None,
        limit: LimitOpt = None,
        to: Annotated[
            str | None, typer.Option(help="Target topic (default: the original).")
        ] = None,
        rate: Annotated[
            str | None, typer.Option(help="Pace: N or N/s messages per second.")
        ] = None,
        dry_run: DryRunOpt = False,
        yes: YesOpt = False,
        again: Annotated[bool, typer.Option(help="Also replay already replayed ones.")] = False,
        transform: Annotated[
            str | None, typer.Option(help="module:function fixing each record first.")
        ] = None,
    ) -> None:
        """Send dead letters' original bytes back (or --to), paced, audited on audit.replays."""
        from contracts.topics import load_catalog
        from interlock.kafka import make_producer
        from ops.dlq.model import select
        from ops.dlq.replay import (
            ReplayRejectedError,
            TokenBucket,
            load_transform,
            plan_replay,
            send_replay,
        )

        s = self.settings()
        name, letters, audit = self.load_letters(s, topic)
        filt = self.where(reason, since, until, key, limit)
        chosen = select(letters, filt, hidden=audit.purged, replayed=audit.replayed, again=again)
        matching = select(letters, filt, hidden=audit.purged)
        skipped = 0 if again else sum(1 for x in matching if x.coordinate in audit.replayed)
        replay_id, at = str(uuid.uuid4()), datetime.now(UTC)
        try:
            fix = load_transform(transform) if transform else None
            items = plan_replay(
                chosen,
                replay_id=replay_id,
                at=at,
                to=to,
                replayed=audit.replayed,
                transform=fix,
                catalog=load_catalog(),
            )
        except ReplayRejectedError as exc:
            self.out.print(f"[red]replay rejected, nothing sent:[/] {exc}")
            raise typer.Exit(1) from exc
        pace = s.dlq.replay_rate
        if rate:
            try:
                pace = float(rate.removesuffix("/s"))
            except ValueError:
                self.out.print(f"[red]--rate wants N or N/s, got {rate!r}[/]")
                raise typer.Exit(2) from None
        targets = sorted({i.target for i in items})
        self.out.print(
            f"{len(items)} dead letter(s) of {name} to replay to {', '.join(targets) or '-'}"
            + (f" ({skipped} already replayed, skipped; --again to include)" if skipped else "")
        )
        if dry_run:
            table = Table("dead letter", "reason", "target", "key", "replay #")
            for i in items:
                table.add_row(
                    i.letter.coordinate,
                    i.letter.reason,
                    i.target,
                    (i.key or b"").decode("utf-8", "replace"),
                    str(i.count),
                )
            self.out.print(table)
            self.out.print("dry run: nothing sent")
            return
        if not items:
            return
        if not yes:
            typer.confirm(f"Replay {len(items)} record(s)?", abort=True)
        producer = make_producer(s)
        started = time.monotonic()
        with _progress(self.out) as progress:
            task = progress.add_task("replaying", total=len(items))
            errors = send_replay(
                producer,
                items,
                replay_id=replay_id,
                audit_topic=s.dlq.audit_topic,
                at=at,
                bucket=TokenBucket(pace) if pace else None,
                on_sent=lambda _i: progress.advance(task),
            )
        self.fail_on(errors)
        elapsed = time.monotonic() - started
        self.out.print(
            f"replayed {len(items)} record(s) in {elapsed:.2f} s "
            f"({len(items) / max(elapsed, 1e-9):.1f}/s), replay id {replay_id}"
        )

    def purge(
        self,
        topic: TopicArg,
        reason: ReasonOpt = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        key: KeyOpt = None,
        limit: LimitOpt = None,
        dry_run: DryRunOpt = False,
        yes: YesOpt = False,
    ) -> None:
        """Hide matching dead letters for good (marks on audit.dlq-purges; no filter: truncate)."""
        from interlock.kafka import make_admin, make_producer, true_end_offsets
        from ops.dlq.model import select
        from ops.dlq.purge import mark_purged, truncate
        from ops.dlq.store import topic_partitions

        s = self.settings()
        name, letters, audit = self.load_letters(s, topic)
        filt = self.where(reason, since, until, key, limit)
        chosen = select(letters, filt, hidden=audit.purged)
        self.out.print(f"{len(chosen)} dead letter(s) of {name} to purge")
        if dry_run or not chosen:
            self.out.print("dry run: nothing changed" if dry_run else "nothing to purge")
            return
        if not yes:
            typer.confirm(f"Purge {len(chosen)} dead letter(s) of {name}?", abort=True)
        conf = s.kafka.librdkafka()
        if filt.empty and filt.limit is None:
            ends = true_end_offsets(
                conf, [(name, p) for p in topic_partitions(conf, name)], tansu=s.kafka.tansu
            )
            if truncate(make_admin(s), name, ends):
                self.out.print(f"truncated {name}: {len(chosen)} record(s) deleted")
                return
            self.out.print("the broker cannot delete records; marking them purged instead")
        with _progress(self.out) as progress:
            task = progress.add_task("purging", total=len(chosen))
            errors = mark_purged(
                make_producer(s),
                chosen,
                purge_topic=s.dlq.purge_topic,
                purge_id=str(uuid.uuid4()),
                at=datetime.now(UTC),
                on_marked=lambda _x: progress.advance(task),
            )
        self.fail_on(errors)
        self.out.print(f"purged {len(chosen)} dead letter(s) of {name} (hidden from now on)")


def make_dlq_app(load: Callable[[], Settings], console: Console | None = None) -> typer.Typer:
    """The ``dlq`` typer app; ``load`` returns the Settings (called once per command)."""
    commands = DlqCommands(load, console)
    app = typer.Typer(help="Dead letters: list, show, stats, replay, purge.", no_args_is_help=True)
    app.command("list")(commands.list_)
    for command in (commands.show, commands.stats, commands.replay, commands.purge):
        app.command()(command)
    return app
