"""A stage loop that hands its handler the whole batch, so the sink can call targets concurrently.

:class:`interlock.stage.StageLoop` calls its handler record by record. :class:`BatchStageLoop`
collects the batch's due records instead, runs ``batch_handler`` once on all of them (the sink
sends them concurrently), then routes each record's failure through the kernel's usual per-record
path, in offset order, before the batch's outputs are flushed and its offsets stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from interlock.records import RawRecord
from interlock.retry import FailureRouter, restore
from interlock.stage import StageLoop

__all__ = ["BatchHandler", "BatchStageLoop"]

#: Handles a batch of (restored) records; returns each one's failure or ``None``, in order.
BatchHandler = Callable[[Sequence[RawRecord]], list[BaseException | None]]


class BatchStageLoop(StageLoop):
    """:class:`StageLoop` with a batch handler (same options, same routing and offsets)."""

    def __init__(
        self,
        consumer: Any,
        batch_handler: BatchHandler,
        router: FailureRouter,
        *,
        on_batch_end: Callable[[], None] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(consumer, self._replay, router, on_batch_end=self._end, **options)
        self._batch_handler = batch_handler
        self._after = on_batch_end
        self._collected: list[RawRecord] = []
        self._failure: BaseException | None = None

    def _handle(self, raw: RawRecord) -> None:
        # Called by StageLoop.run_once per due record: only collect; handled in _end.
        self._collected.append(raw)

    def _replay(self, _record: RawRecord) -> None:
        if self._failure is not None:
            raise self._failure

    def _end(self) -> None:
        batch, self._collected = self._collected, []
        if batch:
            failures = self._batch_handler([restore(raw)[0] for raw in batch])
            for raw, failure in zip(batch, failures, strict=True):
                self._failure = failure
                super()._handle(raw)
            self._failure = None
        if self._after is not None:
            self._after()
