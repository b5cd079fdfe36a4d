"""The simulated CRM's webhook deliveries: signed, retried, in order per company.

Deliveries go through a fixed set of senders, each with its own queue; a company's deliveries
always go to the same sender, so they arrive in the order they were made. A delivery with no
answer or a retryable one is sent again (signed anew) for up to :data:`DELIVERY_RETRY_S`, as a
CRM retries while a receiver restarts.

The senders are coroutines on one uvloop event loop, in a thread of its own, each with a
kept-alive connection of its own (``ops.simulator.http1``): a sender per thread with a blocking
client cost the simulator several times the CPU per delivery, most of it the threads contending
for the interpreter, and aiohttp's client about four times what the connection of its own costs
(docs/performance/notes.md). Whoever makes a delivery (the story's thread, the fake
CRM) hands it over without waiting for its answer, but waits while its sender already holds
about a second of deliveries.

The hand-off crosses threads without waking the loop for each delivery: a sender's queue is a
deque that the making thread appends to and the sender empties from the loop, and the loop is
woken (``call_soon_threadsafe``) only when it is not already due to look at what arrived; while
deliveries keep coming it looks every :data:`HANDOFF_TICK_S` on a timer of its own instead.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

import uvloop

from ops.simulator.http1 import Http1Connection
from ops.simulator.scenario import WebhookAction
from ops.simulator.truth import Recorded
from ops.simulator.wire import Dialect, SignedRequest, render_body, sign_request

__all__ = ["DELIVERY_RETRY_S", "HANDOFF_TICK_S", "WebhookSenders", "WebhookTarget"]

log = logging.getLogger(__name__)
_RETRYABLE = {429, 500, 502, 503, 504}
DELIVERY_RETRY_S = 60.0
"""How long a delivery is sent again while it gets no answer or a retryable one (a CRM retries
for hours; a receiver restarted by its supervisor answers again within seconds)."""
HANDOFF_TICK_S = 0.002
"""While deliveries keep arriving (within a few ticks of each other), how often the senders'
loop looks for them on its own (a delivery waits at most this long before its sender starts
it); once a look finds nothing, the next delivery wakes the loop again."""


@dataclass(frozen=True)
class WebhookTarget:
    """Where and how the simulated CRM delivers: the receiver, the dialect, its secret."""

    url: str
    dialect: Dialect
    secret: str
    source: str


class WebhookSenders:
    """The senders and their queues; every answer is recorded in ``recorded``.

    Args:
        senders: how many deliveries may be in flight at once.
        rate: the run's actions per second: about a second of them may wait per sender.
        abort: set (SIGTERM): no retry waits, queued deliveries are dropped on close.
        timeout: seconds to connect, and for the whole answer to each delivery.
    """

    def __init__(
        self,
        target: WebhookTarget,
        recorded: Recorded,
        *,
        senders: int,
        rate: float,
        clock: Callable[[], float],
        wall: Callable[[], float],
        abort: threading.Event,
        timeout: float = 10.0,
    ) -> None:
        self.target = target
        self.recorded = recorded
        self.clock = clock
        self.wall = wall
        self.abort = abort
        self._bodies: OrderedDict[str, bytes] = OrderedDict()
        self._bodies_lock = threading.Lock()
        self._count = max(1, senders)
        # About a second of deliveries may wait per sender: when the receiver cannot keep up,
        # generation waits for it (the run then offers less than RATE, and says so) instead of
        # piling up actions that the ground truth counts but nobody sent.
        self._backlog = max(16, int(rate / self._count))
        self._queued: list[deque[WebhookAction]] = [deque() for _ in range(self._count)]
        """Each sender's deliveries, the one it is sending first: appended by the making threads,
        removed by the sender once answered, so a queue's length is what its sender holds."""
        self._room = [threading.Condition(threading.Lock()) for _ in range(self._count)]
        """Held to check a queue's length and append to it (two threads make deliveries: the
        story's and the fake CRM's); waited on while the queue is full."""
        self._waiting_for_room = [0] * self._count
        self._arrivals: deque[int] = deque()
        """The senders whose queues got a delivery since the loop last looked."""
        self._looking = False
        """True while the loop is due to look at the arrivals without being woken."""
        self._look_timer: asyncio.TimerHandle | None = None
        self._arrived_at = float("-inf")
        """When the loop last found arrivals (loop time): it keeps looking if they come often."""
        self._idle: dict[int, asyncio.Future[None]] = {}
        """Senders waiting for a delivery, each woken through its future (loop only)."""
        self._closing = False
        self._loop = uvloop.new_event_loop()  # a fraction cheaper per request than asyncio's
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="webhook-senders", daemon=True
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._connections = [Http1Connection(target.url, timeout) for _ in range(self._count)]
        self._origin = len(target.url.rstrip("/"))
        """Length of the origin in every signed URL (``sign_request`` appends the path to it)."""

    def enqueue(self, action: WebhookAction) -> None:
        """Queue a delivery on the sender that owns its company (keeps per-company order).

        Waits while that sender already holds its backlog. Wakes the loop only when it is not
        already due to look: under the GIL a deque's ``append`` and ``popleft`` are atomic, and
        the loop clears ``_looking`` before it reads the arrivals, so an arrival either is read
        by a look already due or sees the flag cleared and wakes the loop itself.
        """
        event = action.events[0] if action.events else {}
        owner = str(event.get("associatedCompanyId") or event.get("objectId") or action.delivery_id)
        index = zlib.crc32(owner.encode()) % self._count
        queued = self._queued[index]
        room = self._room[index]
        with room:
            if len(queued) >= self._backlog:
                self._wait_for_room(index)
            queued.append(action)
        self._arrivals.append(index)
        if not self._looking:
            self._looking = True
            self._loop.call_soon_threadsafe(self._look)

    def _wait_for_room(self, index: int) -> None:
        """With ``_room[index]`` held: wait until the sender's queue has room again."""
        self._waiting_for_room[index] += 1
        try:
            while len(self._queued[index]) >= self._backlog:
                self._room[index].wait()
        finally:
            self._waiting_for_room[index] -= 1

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()

    async def _start(self) -> None:
        self._tasks = [asyncio.create_task(self._sender(i)) for i in range(self._count)]

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until every queued delivery was answered (or ``timeout`` passed)."""
        deadline = time.monotonic() + timeout
        while any(self._queued) and time.monotonic() < deadline:
            if self.abort.wait(0.05):
                return

    def close(self, wait: float) -> None:
        """Stop every sender (after what is queued, unless aborted), waiting up to ``wait``."""
        if not self._thread.is_alive():
            return
        stopping = asyncio.run_coroutine_threadsafe(self._close(wait), self._loop)
        try:
            stopping.result(wait + 5.0)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5.0)
            if not self._thread.is_alive():
                self._loop.close()

    async def _close(self, wait: float) -> None:
        self._closing = True  # each sender ends once its queue is empty (dropped, when aborted)
        if self.abort.is_set():  # a sender still in a delivery must not hold up a quick stop
            for index, queued in enumerate(self._queued):
                while len(queued) > 1:  # the first is its sender's, removed when it returns
                    queued.pop()
                self._made_room(index)
        for index in range(self._count):
            self._wake(index)
        if self._tasks:
            _finished, unfinished = await asyncio.wait(self._tasks, timeout=wait)
            for task in unfinished:
                task.cancel()
        for connection in self._connections:
            connection.close()

    def _look(self) -> None:
        """On the loop: wake the idle senders that got a delivery; look again on a timer while
        deliveries keep arriving (the last look found some too), else leave the next one to
        wake the loop."""
        if self._look_timer is not None:
            self._look_timer.cancel()
            self._look_timer = None
        self._looking = False  # before reading the arrivals: see enqueue
        arrivals = self._arrivals
        if not arrivals:
            return
        while arrivals:
            self._wake(arrivals.popleft())
        now = self._loop.time()
        steady, self._arrived_at = now - self._arrived_at < 4 * HANDOFF_TICK_S, now
        if steady:  # deliveries further apart wake the loop each, and no timer runs for them
            self._looking = True
            self._look_timer = self._loop.call_later(HANDOFF_TICK_S, self._look)

    def _wake(self, index: int) -> None:
        waiter = self._idle.pop(index, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _made_room(self, index: int) -> None:
        """A delivery of ``index`` was answered (or dropped): let a thread waiting for room on."""
        # read without the lock: a thread counts itself under the lock before it checks the
        # length, so one that missed this delivery's removal is counted here already
        if self._waiting_for_room[index]:
            with self._room[index]:
                self._room[index].notify_all()

    def _body(self, action: WebhookAction) -> bytes | None:
        with self._bodies_lock:
            body = self._bodies.get(action.delivery_id)
            if body is None:
                body = render_body(action, self.target.dialect, int(self.wall() * 1000))
                if body is None:
                    return None
                self._bodies[action.delivery_id] = body
                while len(self._bodies) > 20_000:
                    self._bodies.popitem(last=False)
            return body

    async def _post(
        self, connection: Http1Connection, action: WebhookAction, request: SignedRequest
    ) -> int:
        """The answer's status, or 0 when none came (refused, reset, timed out, cut off)."""
        try:
            return await connection.post(request.url[self._origin :], request.headers, request.body)
        except (OSError, TimeoutError) as exc:
            log.warning("webhook %s not delivered: %s: %s", action.delivery_id,
                        type(exc).__name__, exc)  # fmt: skip
            return 0

    async def _deliver(self, connection: Http1Connection, action: WebhookAction) -> None:
        body = self._body(action)
        if body is None:
            return
        target = self.target
        give_up = self.clock() + DELIVERY_RETRY_S
        attempt = 0
        while True:
            request = sign_request(
                action,
                target.dialect,
                body,
                base_url=target.url,
                now_ms=int(self.wall() * 1000),
                secret=target.secret,
                source=target.source,
            )
            status = await self._post(connection, action, request)
            self.recorded.response(status, action.delivery_id if action.fault else None)
            # a sender stops at an answer: a bad delivery's 4xx, or a final one; no answer at
            # all (the receiver restarting) is sent again, the bad deliveries too
            if status != 0 and (action.fault or status not in _RETRYABLE):
                return
            if self.clock() >= give_up or await self._aborted_within(min(5.0, 0.2 * 2**attempt)):
                return
            attempt += 1

    async def _aborted_within(self, seconds: float) -> bool:
        """Wait ``seconds`` before a retry; True as soon as the run is aborted."""
        deadline = self.clock() + seconds
        while not self.abort.is_set():
            left = deadline - self.clock()
            if left <= 0:
                return False
            await asyncio.sleep(min(left, 0.1))
        return True

    async def _sender(self, index: int) -> None:
        queued = self._queued[index]
        connection = self._connections[index]
        loop = asyncio.get_running_loop()
        while queued or not self._closing:
            if not queued:
                waiter = self._idle[index] = loop.create_future()
                await waiter
                continue
            action = queued[0]  # stays queued, and counted against the backlog, until answered
            try:
                if not self.abort.is_set():  # once aborted, what is queued is dropped
                    await self._deliver(connection, action)
            except Exception:  # one delivery's bug must not stop its company's later ones
                log.exception("webhook %s: delivery failed", action.delivery_id)
            finally:
                queued.popleft()
                self._made_room(index)
