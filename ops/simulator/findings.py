"""The worker's reconciliation findings of a drift run, read from ``audit.reconciliation``.

Reconciliation raises an absence (an order missing, an order no quote claims) only once its
SLA has passed, on the worker's next scan: :func:`await_findings` reads the topic again until
every injected case the worker must see is there, and at least until the SLAs of the last
injection have passed (so a finding that comes late is not missed either), or gives up at a
deadline derived from the same SLAs plus the pipeline's lag allowance. Never a blind sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from contracts.reconciliation import decode_record
from ops.simulator.drift import Expected, FindingSeen

__all__ = ["await_findings", "findings_of", "read_findings", "settle_times"]

RECONCILIATION_TOPIC = "audit.reconciliation"


def findings_of(records: Iterable[Mapping[str, Any] | None]) -> list[FindingSeen]:
    """Every finding ever opened (a finding that later resolved counts: it was raised)."""
    out: dict[str, FindingSeen] = {}
    for record in records:
        if record is None or record.get("record") != "finding":
            continue
        fid = str(record.get("finding_id"))
        out.setdefault(fid, FindingSeen(fid, str(record.get("kind")), str(record.get("subject"))))
    return list(out.values())


def read_findings(conf: Mapping[str, Any], prefix: str = "") -> list[FindingSeen]:
    """The findings on ``audit.reconciliation``, read to its true end."""
    from ops.dlq.store import read_topic

    records = read_topic(conf, f"{prefix}{RECONCILIATION_TOPIC}")
    return findings_of(decode_record(r.value) for r in records)


def settle_times(
    injected_at: Iterable[float], order_sla_s: float, interval_s: float, lag_s: float
) -> tuple[float, float]:
    """(not before, deadline), wall-clock seconds: the worker must have raised every injected
    absence once the SLA and one scan passed after the last injection; it may lag ``lag_s``."""
    last = max(injected_at, default=0.0)
    settled = last + order_sla_s + interval_s
    return settled, settled + lag_s


def await_findings(
    read: Callable[[], list[FindingSeen]],
    expected: Iterable[Expected],
    not_before: float,
    deadline: float,
    *,
    wall: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    every_s: float = 2.0,
) -> list[FindingSeen]:
    """Read the findings until each of ``expected`` is there and ``not_before`` has passed,
    or until ``deadline``; returns the last read."""
    wanted = {(e.kind, e.subject) for e in expected}
    while True:
        found = read()
        named = {(f.kind, f.subject) for f in found}
        now = wall()
        if (wanted <= named and now >= not_before) or now >= deadline:
            return found
        sleep(max(0.0, min(every_s, deadline - now)))
