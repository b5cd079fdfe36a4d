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
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import uvloop

from ops.simulator.http1 import Http1Connection
from ops.simulator.scenario import WebhookAction
from ops.simulator.truth import Recorded
from ops.simulator.wire import Dialect, SignedRequest, render_body, sign_request

__all__ = ["DELIVERY_RETRY_S", "WebhookSenders", "WebhookTarget"]

log = logging.getLogger(__name__)
_RETRYABLE = {429, 500, 502, 503, 504}
DELIVERY_RETRY_S = 60.0
"""How long a delivery is sent again while it gets no answer or a retryable one (a CRM retries
for hours; a receiver restarted by its supervisor answers again within seconds)."""


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
        backlog = max(16, int(rate / self._count))
        self._room = [threading.BoundedSemaphore(backlog) for _ in range(self._count)]
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._loop = uvloop.new_event_loop()  # a fraction cheaper per request than asyncio's
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="webhook-senders", daemon=True
        )
        # made here, bound to the loop on first use: a delivery made before start() waits in its
        # queue (the fake CRM's server starts first)
        self._queues: list[asyncio.Queue[WebhookAction | None]] = [
            asyncio.Queue() for _ in range(self._count)
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._connections = [Http1Connection(target.url, timeout) for _ in range(self._count)]
        self._origin = len(target.url.rstrip("/"))
        """Length of the origin in every signed URL (``sign_request`` appends the path to it)."""

    def enqueue(self, action: WebhookAction) -> None:
        """Queue a delivery on the sender that owns its company (keeps per-company order)."""
        event = action.events[0] if action.events else {}
        owner = str(event.get("associatedCompanyId") or event.get("objectId") or action.delivery_id)
        index = zlib.crc32(owner.encode()) % self._count
        self._room[index].acquire()
        with self._pending_lock:
            self._pending += 1
        self._loop.call_soon_threadsafe(self._queues[index].put_nowait, action)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()

    async def _start(self) -> None:
        self._tasks = [asyncio.create_task(self._sender(i)) for i in range(self._count)]

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until every queued delivery was answered (or ``timeout`` passed)."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
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
        for index, pending in enumerate(self._queues):
            if self.abort.is_set():  # a full queue must not hold up a quick stop
                while not pending.empty():
                    if pending.get_nowait() is not None:
                        self._done(index)
            pending.put_nowait(None)
        if self._tasks:
            _finished, unfinished = await asyncio.wait(self._tasks, timeout=wait)
            for task in unfinished:
                task.cancel()
        for connection in self._connections:
            connection.close()

    def _done(self, index: int) -> None:
        with self._pending_lock:
            self._pending -= 1
        self._room[index].release()

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
        pending = self._queues[index]
        while True:
            action = await pending.get()
            if action is None:
                return
            try:
                if not self.abort.is_set():  # once aborted, what is queued is dropped
                    await self._deliver(self._connections[index], action)
            except Exception:  # one delivery's bug must not stop its company's later ones
                log.exception("webhook %s: delivery failed", action.delivery_id)
            finally:
                self._done(index)
