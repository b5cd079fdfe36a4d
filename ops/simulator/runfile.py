"""The run's file (ground truth and recordings): final saves in process, running ones behind it.

A running save serializes the whole run so far, megabytes after a minute at a high rate, in one
orjson call that holds the GIL: in process, the fake APIs and the webhook senders of the same
process stood still for as long, and the actions in flight then were late for a reason that was
not the pipeline's. So a running save is written by a forked child from the process's memory as
it was at the fork (the recordings are copied under their lock first, so the child takes no
lock); the parent goes on at once. A final save waits for such a child first, so that an older
snapshot never replaces it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ops.simulator.truth import write_run

__all__ = ["RunFile"]

log = logging.getLogger(__name__)


class RunFile:
    """Where a run is saved: :meth:`save` now, :meth:`save_behind` from a child process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._child: int | None = None

    def save(self, doc: dict[str, Any]) -> None:
        """Write ``doc`` (a :func:`~ops.simulator.truth.run_document`) before returning."""
        self.wait()
        write_run(self.path, doc)

    def save_behind(self, doc: dict[str, Any]) -> bool:
        """Write ``doc`` from a forked child; False (nothing done) while the last one writes."""
        if self._child is not None:
            pid, status = os.waitpid(self._child, os.WNOHANG)
            if pid == 0:
                return False
            self._reaped(status)
        pid = os.fork()
        if pid == 0:  # the child: no lock, no logging, no teardown (other threads are not here)
            code = 1
            try:
                write_run(self.path, doc)
                code = 0
            except BaseException as exc:
                os.write(2, f"the run's snapshot was not written: {exc!r}\n".encode())
            finally:
                os._exit(code)
        self._child = pid
        return True

    def wait(self) -> None:
        """Until a running save's child has finished."""
        if self._child is not None:
            _, status = os.waitpid(self._child, 0)
            self._reaped(status)

    def _reaped(self, status: int) -> None:
        self._child = None
        if os.waitstatus_to_exitcode(status) != 0:
            log.warning("a running snapshot of %s was not written", self.path)
