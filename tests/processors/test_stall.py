"""The stall detector's verdicts (pure logic; the watchdog on a real worker: test_worker_guards)."""

from __future__ import annotations

import pytest

from processors.stall import PartitionView, StallDetector

pytestmark = pytest.mark.unit

A, B = ("quotes", 0), ("quotes", 1)


def test_a_partition_behind_at_the_same_position_for_the_timeout_is_stalled() -> None:
    detector = StallDetector(30)
    stuck = PartitionView(position=100, highwater=500, paused=False)
    assert detector.observe(0, {A: stuck}, rebalancing=False) == {}
    assert detector.observe(29, {A: stuck}, rebalancing=False) == {}
    assert detector.observe(31, {A: stuck}, rebalancing=False) == {A: (stuck, 31)}


def test_a_partition_that_moves_or_has_nothing_waiting_is_never_stalled() -> None:
    detector = StallDetector(30)
    for t in range(0, 300, 10):
        slow = PartitionView(position=100 + t // 20, highwater=10_000, paused=False)
        idle = PartitionView(position=700, highwater=700, paused=False)
        unknown = PartitionView(position=None, highwater=900, paused=False)
        assert detector.observe(t, {A: slow, B: idle, ("t", 2): unknown}, False) == {}


def test_a_stream_that_still_commits_behind_a_full_buffer_is_not_stalled() -> None:
    detector = StallDetector(30)
    for t in range(0, 300, 10):  # the fetch waits for the buffer; the stream works through it
        full = PartitionView(position=20_000, highwater=90_000, paused=False, committed=t * 10)
        assert detector.observe(t, {A: full}, rebalancing=False) == {}
    # committed as at 290 s, and no more since
    stuck = PartitionView(position=20_000, highwater=90_000, paused=False, committed=2_900)
    assert detector.observe(330, {A: stuck}, rebalancing=False) == {A: (stuck, 40)}


def test_a_paused_partition_is_behind_even_with_nothing_known_waiting() -> None:
    detector = StallDetector(30)
    paused = PartitionView(position=700, highwater=700, paused=True)
    detector.observe(0, {A: paused}, rebalancing=False)
    assert detector.observe(45, {A: paused}, rebalancing=False) == {A: (paused, 45)}


def test_a_rebalance_or_a_partition_going_away_starts_its_clock_again() -> None:
    detector = StallDetector(30)
    stuck = PartitionView(position=100, highwater=500, paused=False)
    detector.observe(0, {A: stuck, B: stuck}, rebalancing=False)
    assert detector.observe(20, {A: stuck, B: stuck}, rebalancing=True) == {}
    detector.observe(25, {A: stuck}, rebalancing=False)  # B revoked
    detector.observe(40, {A: stuck, B: stuck}, rebalancing=False)  # B back
    assert detector.observe(54, {A: stuck, B: stuck}, rebalancing=False) == {}
    assert detector.observe(56, {A: stuck, B: stuck}, rebalancing=False) == {A: (stuck, 31)}
    assert set(detector.observe(71, {A: stuck, B: stuck}, rebalancing=False)) == {A, B}
