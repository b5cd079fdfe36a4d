"""A worker that holds a partition it no longer reads exits, for its supervisor to restart it.

A stream partition is *behind* when its records are waiting (the consumer's last known high
watermark is past its position) or when Faust holds it paused, which it does only during a
rebalance. A partition that stays behind with the same position and the same committed offset
for ``stall_timeout_s`` (a full stream buffer holds the fetch position still, but a stream that
still works commits), while no rebalance is under way, has stopped: a paused partition nothing
resumes, a fetch that no longer runs, a stream that no longer takes its records. Faust's own
livelock check only logs such a partition, after five minutes, and not at all while it believes
a rebalance is on. The watchdog logs what it saw (partition, position, high watermark, paused,
generation) and exits with status ``STALLED``; what was not committed is read again by the next
owner, and the deterministic event ids make the repeats harmless. A partition that moves,
however slowly, or that has nothing waiting, is never stalled; a rebalance starts every
partition's clock again. Changelog partitions (recovery, standbys) are not watched.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["STALLED", "PartitionView", "StallDetector", "install_stall_watchdog", "views"]

log = logging.getLogger(__name__)

STALLED = 4
"""Exit status of a worker that held a partition it no longer read (``stall_timeout_s``)."""


@dataclass(frozen=True)
class PartitionView:
    """What the consumer says of one assigned stream partition at one moment."""

    position: int | None
    highwater: int | None
    paused: bool
    committed: int | None = None
    """The offset the worker last committed (moves as its stream finishes records)."""

    @property
    def behind(self) -> bool:
        """Paused, or records waiting past the position."""
        if self.paused:
            return True
        return (
            self.position is not None
            and self.highwater is not None
            and self.highwater > self.position
        )


class StallDetector:
    """Which partitions have been behind with the same position and committed offset for
    ``timeout_s``."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._since: dict[Any, tuple[PartitionView, float]] = {}

    def observe(
        self, now: float, partitions: Mapping[Any, PartitionView], rebalancing: bool
    ) -> dict[Any, tuple[PartitionView, float]]:
        """Record one look at the partitions; returns the stalled ones, each with its view and
        how long it has not moved."""
        if rebalancing:
            self._since.clear()
            return {}
        since = self._since
        for tp in [tp for tp in since if tp not in partitions]:
            del since[tp]
        stalled = {}
        for tp, view in partitions.items():
            if not view.behind:
                since.pop(tp, None)
                continue
            seen = since.get(tp)
            if seen is None or (seen[0].position, seen[0].committed) != (
                view.position,
                view.committed,
            ):
                since[tp] = (view, now)
                continue
            if now - seen[1] >= self.timeout_s:
                stalled[tp] = (view, now - seen[1])
        return stalled


def views(app: Any) -> dict[Any, PartitionView]:
    """Each assigned stream partition of the worker's consumer (changelogs left out)."""
    consumer = app.consumer
    thread = consumer._thread
    aiokafka_consumer = thread._consumer
    if aiokafka_consumer is None:
        return {}
    assignment = aiokafka_consumer._subscription.subscription
    assignment = assignment.assignment if assignment is not None else None
    if assignment is None:
        return {}
    paused = consumer._paused_partitions
    committed = consumer._committed_offset
    out = {}
    for tp in assignment.tps:
        if consumer._is_changelog_tp(tp):
            continue
        state = assignment.state_value(tp)
        if state is None:
            continue
        position = state.position if state.has_valid_position else None
        out[tp] = PartitionView(position, state.highwater, tp in paused, committed.get(tp))
    return out


def install_stall_watchdog(
    app: Any,
    timeout_s: float,
    *,
    clock: Callable[[], float],
    exit: Callable[[int], Any] = os._exit,
) -> StallDetector | None:
    """Look at the consumer every ``timeout_s / 10`` (between 1 and 30 s) and exit ``STALLED``
    on a stall. Nothing is installed for a ``timeout_s`` of 0."""
    if timeout_s <= 0:
        return None
    detector = StallDetector(timeout_s)

    @app.timer(min(max(timeout_s / 10, 1.0), 30.0), name="stall-watchdog")
    async def watch() -> None:
        stalled = detector.observe(clock(), views(app), bool(app.rebalancing))
        if not stalled:
            return
        what = "; ".join(
            f"{tp.topic}[{tp.partition}] at {v.position} of {v.highwater}"
            f"{' (paused)' if v.paused else ''} for {s:.0f} s"
            for tp, (v, s) in sorted(stalled.items())
        )
        log.error(
            "the worker holds partitions it no longer reads: %s (generation %s); exiting "
            "with status %d for its supervisor to restart it",
            what,
            app.consumer_generation_id,
            STALLED,
        )
        logging.shutdown()
        exit(STALLED)

    return detector
