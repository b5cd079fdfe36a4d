"""A circuit breaker per target: stop calling a target that keeps failing, probe it later."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

__all__ = ["BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """closed → (``failures`` in a row) → open → (``reset_s`` later) half_open → one probe.

    A probe that succeeds closes the breaker; one that fails opens it again. Thread-safe (the
    sink's calls run on one thread; its state may be read from another).
    """

    def __init__(
        self, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold = failures
        self._reset_s = reset_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._lock = threading.Lock()

    @property
    def threshold(self) -> int:
        """Failures in a row that open it."""
        return self._threshold

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._probing or self._clock() - self._opened_at >= self._reset_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """May a call go out now? In half-open, only one probe at a time."""
        with self._lock:
            state = self.state
            if state == "closed":
                return True
            if state == "half_open" and not self._probing:
                self._probing = True
                return True
            return False

    def retry_in(self) -> float:
        """Seconds until :meth:`allow` may say yes (0: now); a probe in flight: a short while."""
        with self._lock:
            if self._opened_at is None:
                return 0.0
            if self._probing:
                return min(1.0, self._reset_s)
            return max(0.0, self._opened_at + self._reset_s - self._clock())

    def success(self) -> bool:
        """A call went through; True if this closed an open breaker."""
        with self._lock:
            was_open = self._opened_at is not None
            self._failures = 0
            self._opened_at = None
            self._probing = False
            return was_open

    def failure(self) -> bool:
        """A call failed; True if this opened the breaker (the threshold, or a failed probe)."""
        with self._lock:
            self._failures += 1
            opens = self._probing or (self._opened_at is None and self._failures >= self._threshold)
            if self._probing or self._failures >= self._threshold:
                self._opened_at = self._clock()
            self._probing = False
            return opens
