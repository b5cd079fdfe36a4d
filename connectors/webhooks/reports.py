"""Delivery reports of the landing producer, brought to the event loops whose requests await them.

:class:`LoopPoll` polls the producer on an event loop while requests on it wait, so their
reports are settled on that loop's thread; :class:`Handover` brings the reports another thread
served (the idle-time poll thread, ``close()``) to their loops, once per poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

__all__ = ["LOOP_POLL_S", "Handover", "LoopPoll", "Settle"]

log = logging.getLogger(__name__)

LOOP_POLL_S = 0.001
"""How often an event loop with requests in flight polls the producer for their reports."""

Settle = Callable[[], None]


class Handover:
    """Delivery reports gathered on the thread that polls, handed to their event loops in bulk.

    A produce response acknowledges many records at once; their waiting requests are woken by
    one callback on their loop, instead of one cross-thread wake-up per record.
    """

    def __init__(self) -> None:
        self._ready: deque[tuple[asyncio.AbstractEventLoop, Settle]] = deque()

    def add(self, loop: asyncio.AbstractEventLoop, settle: Settle) -> None:
        self._ready.append((loop, settle))

    def hand_over(self) -> None:
        """Schedule every gathered report on its loop (a closed loop has nobody waiting)."""
        if not self._ready:
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[Settle]] = {}
        while True:
            try:
                loop, settle = self._ready.popleft()
            except IndexError:  # another thread (close, after a join timed out) took the rest
                break
            by_loop.setdefault(loop, []).append(settle)
        for loop, settles in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_all, settles)
            except RuntimeError:  # the loop is closed: no request awaits these any more
                log.debug("%d delivery reports for a closed event loop", len(settles))


def _settle_all(settles: list[Settle]) -> None:
    for settle in settles:
        settle()


class LoopPoll:
    """Polls the producer on one event loop while requests on it await their reports.

    Requests are watched in the order they were produced, each with its deadline (the delivery
    timeout plus a second: librdkafka reports every record within the timeout, so this only
    covers a report that never comes). The deadlines share one delay, so they come in order
    and each tick only looks at the oldest: cheaper than a timer per request.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        poll: Callable[[], None],
        done: Callable[[asyncio.AbstractEventLoop], None],
        expired: Callable[[], BaseException],
    ) -> None:
        """``poll`` serves the ready reports; ``done(loop)`` is called once none waits any
        more; ``expired()`` is the exception of a request whose report never came."""
        self._loop = loop
        self._poll = poll
        self._done = done
        self._expired = expired
        self._waiting: deque[tuple[float, asyncio.Future[None]]] = deque()

    def watch(self, future: asyncio.Future[None], deadline: float) -> None:
        self._waiting.append((deadline, future))

    def tick(self) -> None:
        try:
            self._poll()
        finally:  # whatever a report did, the requests still waiting keep being polled
            self._expire()

    def _expire(self) -> None:
        waiting, now = self._waiting, time.monotonic()
        while waiting:
            deadline, future = waiting[0]
            if not future.done():
                if deadline > now:
                    break
                future.set_exception(self._expired())
            waiting.popleft()
        if waiting:
            self._loop.call_later(LOOP_POLL_S, self.tick)
        else:
            self._done(self._loop)
