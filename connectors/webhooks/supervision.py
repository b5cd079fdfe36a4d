"""Keeps the in-process mapping stage alive: a failed stage is rebuilt, or the service dies.

The mapping stage (:class:`interlock.stage.StageLoop` over
:class:`~connectors.webhooks.mapping_stage.WebhookMapper`) raises out of its loop when its
producer failed fatally, when a batch's events were not acknowledged, or on a bug. Its consumer
has not stored the failed batch's offsets, so rebuilding the stage (a new producer and a new
consumer in the same group) reads that batch again: nothing is lost, and the deterministic event
ids make the repeats harmless. Rebuilds wait 1, 2, 4 … 30 s; ``restart_limit`` failures in a row
(no batch handled in between, no minute of running) declare the service dead, and so does an
error that a rebuild cannot fix (a refused login, an untrusted certificate:
:class:`~contracts.errors.ConfigError`). A dead service exits non-zero so that its supervisor
restarts it; it never stays up with a dead mapper.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from connectors.webhooks.health import ServiceHealth
from contracts.errors import ConfigError
from interlock.stage import StageLoop

__all__ = ["MapperSupervisor"]

log = logging.getLogger(__name__)


class MapperSupervisor:
    """Runs the stage that ``build`` makes; rebuilds it after a failure.

    Args:
        build: makes a new stage loop (its own producer and subscribed consumer).
        health: where a death is reported.
        restart_limit: failures in a row before the service is declared dead.
        first_delay_s: wait before the first rebuild; doubles up to ``max_delay_s``.
        stable_after_s: a stage that ran this long without failing starts the count over.
    """

    def __init__(
        self,
        build: Callable[[], StageLoop],
        health: ServiceHealth,
        *,
        restart_limit: int = 5,
        first_delay_s: float = 1.0,
        max_delay_s: float = 30.0,
        stable_after_s: float = 60.0,
    ) -> None:
        self._build = build
        self._health = health
        self._limit = restart_limit
        self._first_delay_s = first_delay_s
        self._max_delay_s = max_delay_s
        self._stable_after_s = stable_after_s
        self.loop: StageLoop | None = None
        """The stage running now."""
        self.rebuilds = 0
        """How many times the stage was rebuilt after a failure."""

    def run(self, stop: threading.Event) -> None:
        """Run (and rebuild) the stage until ``stop``, or until it cannot heal."""
        failures = 0
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.loop = loop = self._build()
            except ConfigError as exc:
                self._health.fail("mapper", str(exc))
                return
            except Exception as exc:
                error: BaseException = exc
            else:
                try:
                    while not stop.is_set():
                        if loop.run_once():
                            failures = 0  # handled records: this stage works
                    return
                except ConfigError as exc:
                    self._health.fail("mapper", str(exc))
                    return
                except Exception as exc:
                    error = exc
                finally:
                    _close(loop)
            if time.monotonic() - started > self._stable_after_s:
                failures = 0
            failures += 1
            if failures >= self._limit:
                self._health.fail("mapper", f"failed {failures} times in a row, last: {error!r}")
                return
            delay = min(self._first_delay_s * 2 ** (failures - 1), self._max_delay_s)
            log.warning("mapping stage failed (%r); rebuilding it in %.0f s", error, delay)
            self.rebuilds += 1
            stop.wait(delay)


def _close(loop: StageLoop) -> None:
    """Close the consumer (leaving the group commits only the offsets already stored)."""
    try:
        loop.consumer.close()
    except Exception as exc:
        log.warning("closing the mapping stage's consumer: %r", exc)
