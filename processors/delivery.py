"""Faust's per-record delivery without four tasks per record.

Faust 0.15.3's fetcher hands every fetched record to its stream with
``await consumer.wait_first(callback(message), consumer.suspend_flow.wait())``: four tasks
(the delivery, the flow-suspension wait, the consumer's stopped and crashed waits), an
``asyncio.wait`` and three cancellations, per record. The delivery almost never blocks (it
puts the record in a stream buffer that has room), and in ``wait_first`` it runs its first
step before anything else can win anyway: tasks start in the order they were created.

``install_direct_delivery`` makes the consumer run that first step itself. When the delivery
completes without suspending (the common case), it is done, as it would have been in the first
loop iteration of ``wait_first``. When it suspends (a full buffer, a contended lock), the rest
of it races the flow suspension in Faust's own ``wait_first``, exactly as before; so does any
call of a stopped or crashed consumer. The fetcher yields to the event loop every 100 records
(Faust's ``yield_every``), so other tasks still run during a burst.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any

from faust.transport.consumer import Consumer
from mode.services import Service, WaitResults

__all__ = ["install_direct_delivery"]


class _Resumed:
    """The rest of a coroutine that already ran until it yielded ``pending`` (awaitable once).

    A started coroutine cannot be handed to a Task (the Task would resume it before the future
    it waits for is done), so this drives it on: it yields what the coroutine yields to the
    Task that awaits it and passes every wake-up and every exception (a cancellation) through.
    """

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro = coro
        self.pending = pending

    def __await__(self) -> Generator[Any, None, Any]:
        coro, pending = self.coro, self.pending
        while True:
            try:
                yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(None)
                except StopIteration as stop:
                    return stop.value


_original_wait_first = Service.wait_first


async def _wait_first(self: Consumer, *coros: Any, timeout: Any = None) -> WaitResults:
    first = coros[0] if coros else None
    if (
        len(coros) != 2
        or timeout is not None
        or not asyncio.iscoroutine(first)
        or self._stopped.is_set()
        or self._crashed.is_set()
    ):
        return await _original_wait_first(self, *coros, timeout=timeout)
    other = coros[1]
    try:
        pending = first.send(None)
    except BaseException as exc:
        if asyncio.iscoroutine(other):
            other.close()  # never started: closed, not "never awaited"
        if isinstance(exc, StopIteration):
            return WaitResults([first], [exc.value], False)
        raise
    return await _original_wait_first(self, _Resumed(first, pending), other)


def install_direct_delivery() -> None:
    """Run each record's delivery step in the fetcher itself (idempotent)."""
    if Consumer.wait_first is not _wait_first:
        Consumer.wait_first = _wait_first  # type: ignore[method-assign,assignment]
