"""What ``audit.reconciliation`` says: open findings, their age, and the repairs already done.

Pure: records in (decoded JSON), state out. A finding is open from its ``finding`` record until
a ``resolved`` record with its id; the same drift found again later opens it again.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Finding", "LedgerView", "fold_records", "render_csv", "render_json"]


@dataclass(frozen=True)
class Finding:
    """One open drift finding as recorded by the worker."""

    finding_id: str
    kind: str
    subject: str
    opened_at: datetime
    quote_id: str | None = None
    account_id: str | None = None
    deal_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    repair: Mapping[str, Any] | None = None

    def age_s(self, now: datetime) -> float:
        return max((now - self.opened_at).total_seconds(), 0.0)

    def as_json(self, now: datetime) -> dict[str, Any]:
        return {
            "finding_id": self.finding_id,
            "kind": self.kind,
            "subject": self.subject,
            "opened_at": self.opened_at.isoformat(),
            "age_s": round(self.age_s(now), 3),
            "quote_id": self.quote_id,
            "deal_id": self.deal_id,
            "details": dict(self.details),
            "repairable": self.repair is not None,
        }


@dataclass
class LedgerView:
    """Open findings by id, and the repair records by finding id (oldest first)."""

    open: dict[str, Finding] = field(default_factory=dict)
    repairs: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)

    def selected(self, kinds: Iterable[str] = (), since: datetime | None = None) -> list[Finding]:
        """Open findings of ``kinds`` (all if none) opened at or after ``since``, oldest first."""
        wanted = set(kinds)
        return sorted(
            (
                f
                for f in self.open.values()
                if (not wanted or f.kind in wanted) and (since is None or f.opened_at >= since)
            ),
            key=lambda f: (f.opened_at, f.finding_id),
        )

    def by_kind(self, findings: Iterable[Finding]) -> dict[str, int]:
        return dict(sorted(Counter(f.kind for f in findings).items()))


def fold_records(records: Iterable[Mapping[str, Any]]) -> LedgerView:
    """The view after every record, in the order read (one subject's records share a key, so a
    partition, so they are in order)."""
    view = LedgerView()
    for record in records:
        fid = record.get("finding_id")
        if not isinstance(fid, str):
            continue
        kind = record.get("record")
        if kind == "finding":
            view.open[fid] = Finding(
                finding_id=fid,
                kind=str(record.get("kind")),
                subject=str(record.get("subject")),
                opened_at=datetime.fromisoformat(str(record["at"])),
                quote_id=record.get("quote_id"),
                account_id=record.get("account_id"),
                deal_id=record.get("deal_id"),
                details=record.get("details") or {},
                repair=record.get("repair"),
            )
        elif kind == "resolved":
            view.open.pop(fid, None)
            view.repairs.pop(fid, None)
        elif kind == "repair" and not record.get("dry_run"):
            view.repairs.setdefault(fid, []).append(record)
    return view


def render_json(findings: list[Finding], now: datetime) -> str:
    return json.dumps([f.as_json(now) for f in findings], indent=2, default=str)


def render_csv(findings: list[Finding], now: datetime) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["finding_id", "kind", "subject", "opened_at", "age_s", "quote_id", "details"])
    for f in findings:
        writer.writerow(
            [
                f.finding_id,
                f.kind,
                f.subject,
                f.opened_at.isoformat(),
                f"{f.age_s(now):.0f}",
                f.quote_id or "",
                json.dumps(dict(f.details), sort_keys=True, default=str),
            ]
        )
    return out.getvalue()
