"""A token bucket: paces the simulator at RATE events per second, with a small burst."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """``wait()`` says how long to sleep before the next event may go (0 when a token is free).

    The clock is passed in, so tests drive it; tokens accrue at ``rate`` per second up to
    ``burst``. A sender that falls behind catches up at most ``burst`` events at once.
    """

    def __init__(self, rate: float, clock: Callable[[], float], burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self._clock = clock
        self._tokens = 1.0
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def wait(self) -> float:
        """Seconds until a token is available; takes it when 0 is returned."""
        self._refill()
        if self._tokens >= 1.0 - 1e-9:  # float residue must not turn into endless tiny waits
            self._tokens = max(0.0, self._tokens - 1.0)
            return 0.0
        return (1.0 - self._tokens) / self.rate
