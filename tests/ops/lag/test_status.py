"""The Burrow-style status rules and time-lag arithmetic, on hand-made sample windows."""

from __future__ import annotations

import pytest

from ops.lag.status import (
    GroupStatus,
    PartitionSample,
    group_status,
    interpolate_time_lag,
    partition_status,
    time_lag_seconds,
)

pytestmark = pytest.mark.unit


def window(
    *points: tuple[int, int], start: float = 1000.0, step: float = 5.0
) -> list[PartitionSample]:
    """Samples (committed, end) taken every ``step`` seconds."""
    return [PartitionSample(start + i * step, c, e) for i, (c, e) in enumerate(points)]


def test_no_lag_is_ok_even_when_nothing_moves() -> None:
    w = window((10, 10), (10, 10), (10, 10))
    assert partition_status(w, group_active=False) is GroupStatus.OK


def test_too_few_samples_is_ok() -> None:
    w = window((0, 10), (0, 10))
    assert partition_status(w, group_active=True) is GroupStatus.OK


def test_committed_frozen_with_lag_and_members_is_stall() -> None:
    w = window((5, 10), (5, 12), (5, 12))
    assert partition_status(w, group_active=True) is GroupStatus.STALL


def test_committed_frozen_with_lag_and_no_members_is_stop() -> None:
    w = window((5, 10), (5, 10), (5, 10))
    assert partition_status(w, group_active=False) is GroupStatus.STOP


def test_committing_but_lag_growing_is_warn() -> None:
    w = window((0, 10), (5, 20), (10, 30), (15, 40))
    assert partition_status(w, group_active=True) is GroupStatus.WARN


def test_committing_and_lag_shrinking_is_ok() -> None:
    w = window((0, 40), (20, 45), (40, 50))
    assert partition_status(w, group_active=True) is GroupStatus.OK


def test_lag_that_dipped_once_is_not_warn() -> None:
    w = window((0, 10), (8, 15), (10, 30))
    assert partition_status(w, group_active=True) is GroupStatus.OK


def test_group_takes_the_worst_partition() -> None:
    ok = window((10, 10), (10, 10), (10, 10))
    warn = window((0, 10), (5, 20), (10, 30))
    stall = window((3, 9), (3, 9), (3, 9))
    assert group_status([ok, warn], group_active=True) is GroupStatus.WARN
    assert group_status([ok, warn, stall], group_active=True) is GroupStatus.STALL
    assert group_status([], group_active=True) is GroupStatus.OK


def test_time_lag_from_the_first_unconsumed_record() -> None:
    assert time_lag_seconds(0, now=100.0, first_unconsumed_timestamp=10.0) == 0.0
    assert time_lag_seconds(3, now=100.0, first_unconsumed_timestamp=40.0) == 60.0
    assert time_lag_seconds(3, now=100.0, first_unconsumed_timestamp=None) is None


def test_interpolated_time_lag_brackets_the_committed_offset() -> None:
    # end passed offset 20 between t=1005 (end 10) and t=1010 (end 30): at 1005 + 5 * 11/20.
    w = window((0, 0), (0, 10), (20, 30), (20, 30))
    assert interpolate_time_lag(w, now=1020.0) == pytest.approx(1020.0 - (1005.0 + 5 * 11 / 20))


def test_interpolated_time_lag_is_at_least_the_window_when_older_than_it() -> None:
    w = window((5, 10), (5, 10), (5, 10))
    assert interpolate_time_lag(w, now=1030.0) == pytest.approx(30.0)


def test_interpolated_time_lag_without_lag_is_zero() -> None:
    assert interpolate_time_lag(window((7, 7)), now=5000.0) == 0.0
    assert interpolate_time_lag([], now=5000.0) is None


def test_interpolated_time_lag_grows_with_the_clock() -> None:
    w = window((5, 10), (5, 10), (5, 10))
    assert interpolate_time_lag(w, now=2000.0) > interpolate_time_lag(w, now=1500.0)  # type: ignore[operator]
