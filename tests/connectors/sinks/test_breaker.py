"""The circuit breaker's transitions, on a fake clock: what the sink logs and waits on."""

from __future__ import annotations

import pytest

from connectors.sinks.breaker import CircuitBreaker

pytestmark = pytest.mark.unit


def test_the_breaker_reports_each_opening_once_and_when_a_call_may_go_again() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=3, reset_s=30.0, clock=lambda: now[0])
    assert [breaker.failure() for _ in range(3)] == [False, False, True]  # the 3rd opens it
    assert breaker.failure() is False  # a late in-flight failure: already open, not news
    assert (breaker.state, breaker.allow(), breaker.retry_in()) == ("open", False, 30.0)
    now[0] = 20.0
    assert breaker.retry_in() == 10.0
    now[0] = 30.0
    assert breaker.allow() is True  # the one probe of half-open
    assert (breaker.allow(), breaker.retry_in()) == (False, 1.0)  # a probe is in flight
    assert breaker.failure() is True  # the probe failed: opened again
    now[0] = 60.0
    assert breaker.allow() is True
    assert breaker.success() is True  # the probe went through: closed
    assert (breaker.state, breaker.retry_in(), breaker.success()) == ("closed", 0.0, False)
