"""Logging setup for every command: one line per record, level from settings."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable

__all__ = ["RateLimitedLog", "configure_logging"]


def configure_logging(level: str = "INFO") -> None:
    """Configure the root logger once; quiet the chattiest third-party loggers."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for noisy in ("aiokafka", "faust.transport", "mode", "uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


class RateLimitedLog:
    """Logs each kind of line (a key) at most once per ``interval_s``, then says how many of that
    kind were left out, so an outage of minutes reads as a few lines, not thousands."""

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._clock = clock
        self._last: dict[Hashable, float] = {}
        self._left_out: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def log(self, level: int, key: Hashable, msg: str, *args: object) -> bool:
        """Log ``msg % args`` unless a line of ``key`` went out less than ``interval_s`` ago;
        True if it was logged."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval_s:
                self._left_out[key] = self._left_out.get(key, 0) + 1
                return False
            self._last[key] = now
            left_out = self._left_out.pop(key, 0)
        if left_out:
            msg += " (%d more like it in the last %.0f s not logged)"
            args = (*args, left_out, now - last if last is not None else 0.0)
        self._logger.log(level, msg, *args)
        return True
