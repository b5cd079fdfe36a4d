"""Liveness and readiness of the webhook service, as ``/healthz`` and ``/readyz`` report them.

Liveness (``/healthz``) is false only once the service can no longer do its job and cannot heal
(a part declared itself dead with :meth:`ServiceHealth.fail`); the process then exits non-zero,
so that a supervisor restarts it. Readiness (``/readyz``) asks every registered check whether
the service can land a record now (producer healthy, broker answered recently); a check that is
not ready says why, and the service keeps healing meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["ReadinessCheck", "ServiceHealth"]

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], str | None]
"""Returns None when ready, else why not (one line)."""


class ServiceHealth:
    """What ``/healthz`` and ``/readyz`` answer; parts report into it from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dead: list[str] = []
        self._checks: dict[str, ReadinessCheck] = {}
        self._on_dead: list[Callable[[], None]] = []
        self.died = threading.Event()

    def add_check(self, name: str, check: ReadinessCheck) -> None:
        """Make ``check`` part of readiness (replacing a check of the same name)."""
        with self._lock:
            self._checks[name] = check

    def on_dead(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once when the service is declared dead (e.g. stop the server)."""
        with self._lock:
            self._on_dead.append(callback)
            dead = bool(self._dead)
        if dead:
            callback()

    def fail(self, part: str, reason: str) -> None:
        """Declare the service dead: ``part`` cannot do its job and cannot heal."""
        log.error("%s cannot heal, the service stops: %s", part, reason)
        with self._lock:
            self._dead.append(f"{part}: {reason}")
            first = not self.died.is_set()
            self.died.set()
            callbacks = list(self._on_dead) if first else []
        for callback in callbacks:
            callback()

    def liveness(self) -> list[str]:
        """Why the service is dead; empty while it is alive."""
        with self._lock:
            return list(self._dead)

    def readiness(self) -> list[str]:
        """Why the service cannot land a record now; empty when it can."""
        with self._lock:
            checks = list(self._checks.items())
            dead = list(self._dead)
        reasons = list(dead)
        for name, check in checks:
            try:
                why = check()
            except Exception as exc:  # a broken check must not break the probe endpoint
                why = f"check failed: {exc!r}"
            if why is not None:
                reasons.append(f"{name}: {why}")
        return reasons
