"""A rate-limited log: an outage of minutes reads as a few lines that say what was left out."""

from __future__ import annotations

import logging

import pytest

from interlock.logs import RateLimitedLog

pytestmark = pytest.mark.unit


def test_one_line_per_kind_per_interval_then_the_count_of_what_was_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    quiet = RateLimitedLog(logging.getLogger("test.quiet"), interval_s=30.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, "test.quiet"):
        for second in range(65):  # one failure a second for 65 s, on one key
            now[0] = float(second)
            quiet.log(logging.WARNING, "crm", "crm down: %s", "503")
        quiet.log(logging.WARNING, "erp", "erp down: %s", "refused")  # another key: its own
    assert [r.getMessage() for r in caplog.records] == [
        "crm down: 503",
        "crm down: 503 (29 more like it in the last 30 s not logged)",
        "crm down: 503 (29 more like it in the last 30 s not logged)",
        "erp down: refused",
    ]
