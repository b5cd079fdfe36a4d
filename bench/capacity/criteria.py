"""When the stack kept up with a rate: enough sent, handed off in time, no backlog building.

The lag the exporter reports is committed-offset lag: a stage that commits every few seconds
(librdkafka's auto-commit, every 5 s) shows a sawtooth, rising between two commits and
falling back at each one, even when it is fully caught up. Over a short window a line fitted
through such a sawtooth (``ops.simulator.live.lag_grew``) rises or falls with where the teeth
happen to fall, and the exporter's sampling can alias it into a slow drift. So a backlog is
judged here on each consumer group's floor, its lowest lag in the first and in the second half
of the window: a commit brings a caught-up group back to its floor, a backlog lifts the floor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ops.simulator.live import MetricSample

__all__ = [
    "BACKLOG_NOISE_MSGS",
    "BACKLOG_SECONDS",
    "LATENCY_LIMIT_S",
    "SENT_SHARE",
    "backlog_grew",
    "backlog_limit",
    "floor_rise",
    "lag_by_group",
    "passed",
]

LATENCY_LIMIT_S = 1.0
SENT_SHARE = 0.95
"""A run counts only if the simulator got this share of the asked rate out."""
BACKLOG_SECONDS = 1.0
"""A backlog counts when the groups' floors rose by more than this many seconds of what the
stages consumed: as much as the handoff's latency limit, queued on top of the floor."""
BACKLOG_NOISE_MSGS = 100.0


def lag_by_group(samples: Iterable[MetricSample]) -> dict[str, float]:
    """Committed-offset lag of each consumer group, summed over its topics and partitions."""
    out: dict[str, float] = {}
    for s in samples:
        if s.name == "interlock_consumer_lag_messages":
            group = s.labels.get("group", "?")
            out[group] = out.get(group, 0.0) + s.value
    return out


def floor_rise(series: Sequence[tuple[float, Mapping[str, float]]]) -> float | None:
    """How far the lag's floor rose over ``series`` (time, lag by group), in messages.

    Each group's floor is its lowest lag in the first and in the second half of the series;
    the rise is the second floor less the first, summed over groups. None when either half
    has fewer than two samples.
    """
    if len(series) < 4:
        return None
    middle = (series[0][0] + series[-1][0]) / 2
    first = [lags for t, lags in series if t <= middle]
    second = [lags for t, lags in series if t > middle]
    if len(first) < 2 or len(second) < 2:
        return None
    groups = {g for _, lags in series for g in lags}
    return sum(_floor(second, g) - _floor(first, g) for g in groups)


def backlog_limit(consumed_per_s: float | None) -> float:
    """The floor's rise that counts as a backlog: :data:`BACKLOG_SECONDS` of what every stage
    consumed (``consumed_per_s``, messages/s), at least :data:`BACKLOG_NOISE_MSGS`."""
    return max(BACKLOG_NOISE_MSGS, BACKLOG_SECONDS * (consumed_per_s or 0.0))


def backlog_grew(
    series: Sequence[tuple[float, Mapping[str, float]]], consumed_per_s: float | None
) -> bool | None:
    """Whether a backlog built up over ``series``: the floor rose past :func:`backlog_limit`."""
    rise = floor_rise(series)
    return None if rise is None else rise > backlog_limit(consumed_per_s)


def _floor(lags: Sequence[Mapping[str, float]], group: str) -> float:
    return min(x.get(group, 0.0) for x in lags)


def passed(run: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether the stack kept up at this run's rate, and why (not)."""
    if run.get("error"):
        return False, "failed: " + str(run["error"])[:160]
    why = []
    sent = run.get("sent_per_s")
    if sent is None or sent < SENT_SHARE * run["offered_per_s"]:
        why.append(f"simulator sent {sent or 0:,.0f}/s of {run['offered_per_s']:,.0f}/s")
    p99 = (run.get("handoff") or {}).get("p99")
    if p99 is None:
        why.append("no handoff recorded in the window")
    elif p99 >= LATENCY_LIMIT_S:
        why.append(f"handoff p99 {p99:.2f} s")
    settled, limit = run.get("lag_settled"), run.get("lag_backlog_limit")
    if settled is not None and limit is not None and settled > limit:
        why.append(f"{settled:,.0f} msgs of lag left after the drain")
    grew = run.get("lag_grew")
    if grew:
        rise = run.get("lag_floor_rise")
        why.append("lag grew" + (f" (floor +{rise:,.0f} msgs)" if rise is not None else ""))
    elif grew is None:
        why.append("lag trend unknown")
    return not why, "; ".join(why) or "kept up"
