"""Consumer-group health from offset samples: Burrow-style status and time lag, as pure functions.

The lag exporter samples, every interval, each partition's committed offset and true end
offset. Over a sliding window of those samples a partition is judged (worst partition wins for
the group), checked in this order:

- ``OK`` when the latest lag is 0, or the window holds fewer than ``min_samples`` samples.
- ``STOP`` when the committed offset did not move over the window, lag > 0, and the group has no
  active member (empty or dead group): nobody is consuming and nobody will commit.
- ``STALL`` when the committed offset did not move over the window and lag > 0, while the group is
  still there (members present, e.g. a worker stuck in a poison record or a deadlock).
- ``WARN`` when the committed offset moves but lag never shrank over the window and ended higher
  than it started (the consumer is falling behind).
- ``OK`` otherwise.

Time lag is the age of the first unconsumed record (``now`` minus its timestamp), 0 when the
lag is 0; when that record cannot be fetched it is interpolated from the window: the time at
which the end offset passed the committed offset.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "STATUS_CODES",
    "GroupStatus",
    "PartitionSample",
    "group_status",
    "interpolate_time_lag",
    "partition_status",
    "time_lag_seconds",
]


class GroupStatus(enum.StrEnum):
    """Health of a consumer group (or one of its partitions), from best to worst."""

    OK = "OK"
    WARN = "WARN"
    STALL = "STALL"
    STOP = "STOP"


#: Numeric code of each status (the order of severity), for sorting and for documentation.
STATUS_CODES: dict[GroupStatus, int] = {
    GroupStatus.OK: 0,
    GroupStatus.WARN: 1,
    GroupStatus.STALL: 2,
    GroupStatus.STOP: 3,
}


@dataclass(frozen=True)
class PartitionSample:
    """One observation of a partition of a group: when, where the group is, where the log ends."""

    at: float
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


def partition_status(
    window: Sequence[PartitionSample], *, group_active: bool, min_samples: int = 3
) -> GroupStatus:
    """The status of one partition from its samples, oldest first (rules in the module doc)."""
    if not window:
        return GroupStatus.OK
    latest = window[-1]
    if latest.lag == 0 or len(window) < min_samples:
        return GroupStatus.OK
    committed_moved = any(s.committed != window[0].committed for s in window[1:])
    if not committed_moved:
        return GroupStatus.STALL if group_active else GroupStatus.STOP
    lags = [s.lag for s in window]
    never_shrank = all(b >= a for a, b in itertools.pairwise(lags))
    if never_shrank and lags[-1] > lags[0]:
        return GroupStatus.WARN
    return GroupStatus.OK


def group_status(
    windows: Sequence[Sequence[PartitionSample]], *, group_active: bool, min_samples: int = 3
) -> GroupStatus:
    """The worst partition status of a group."""
    statuses = [
        partition_status(w, group_active=group_active, min_samples=min_samples) for w in windows
    ]
    return max(statuses, key=STATUS_CODES.__getitem__, default=GroupStatus.OK)


def time_lag_seconds(
    lag: int, now: float, first_unconsumed_timestamp: float | None
) -> float | None:
    """Age of the first unconsumed record; 0 without lag; None when its time is unknown."""
    if lag <= 0:
        return 0.0
    if first_unconsumed_timestamp is None:
        return None
    return max(0.0, now - first_unconsumed_timestamp)


def interpolate_time_lag(window: Sequence[PartitionSample], now: float) -> float | None:
    """Time lag estimated from the samples: how long ago the end offset passed the committed one.

    Finds the two consecutive samples whose end offsets bracket the latest committed offset and
    interpolates linearly between their times. When even the oldest sample's end was already past
    the committed offset, the record is at least as old as the window (a lower bound is returned).
    """
    if not window:
        return None
    latest = window[-1]
    if latest.lag == 0:
        return 0.0
    target = latest.committed
    if window[0].end > target:
        return max(0.0, now - window[0].at)
    for older, newer in itertools.pairwise(window):
        if older.end <= target < newer.end:
            span = newer.end - older.end
            # The record at offset ``target`` exists once the end passes ``target + 1``.
            fraction = min(1.0, (target + 1 - older.end) / span)
            produced_at = older.at + fraction * (newer.at - older.at)
            return max(0.0, now - produced_at)
    return None
