"""The simulated CRM's webhook deliveries: signed, retried, in order per company.

Deliveries go through a fixed set of senders, each with its own thread and a bounded queue;
a company's deliveries always go to the same sender, so they arrive in the order they were
made. A delivery with no answer or a retryable one is sent again (signed anew) for up to
:data:`DELIVERY_RETRY_S`, as a CRM retries while a receiver restarts.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from interlock.httpclient import HttpClient, TransportError
from ops.simulator.scenario import WebhookAction
from ops.simulator.truth import Recorded
from ops.simulator.wire import Dialect, render_body, sign_request

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
    """The sender threads and their queues; every answer is recorded in ``recorded``.

    Args:
        senders: how many deliveries may be in flight at once.
        rate: the run's actions per second: about a second of them may wait per sender.
        abort: set (SIGTERM): no retry waits, queued deliveries are dropped on close.
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
    ) -> None:
        self.target = target
        self.recorded = recorded
        self.clock = clock
        self.wall = wall
        self.abort = abort
        self._bodies: OrderedDict[str, bytes] = OrderedDict()
        self._bodies_lock = threading.Lock()
        # About a second of deliveries may wait per sender: when the receiver cannot keep up,
        # generation waits for it (the run then offers less than RATE, and says so) instead of
        # piling up actions that the ground truth counts but nobody sent.
        count = max(1, senders)
        backlog = max(16, int(rate / count))
        self._queues: list[queue.Queue[WebhookAction | None]] = [
            queue.Queue(maxsize=backlog) for _ in range(count)
        ]
        self._threads: list[threading.Thread] = []

    def enqueue(self, action: WebhookAction) -> None:
        """Queue a delivery on the sender that owns its company (keeps per-company order)."""
        event = action.events[0] if action.events else {}
        owner = str(event.get("associatedCompanyId") or event.get("objectId") or action.delivery_id)
        self._queues[zlib.crc32(owner.encode()) % len(self._queues)].put(action)

    def start(self) -> None:
        for i in range(len(self._queues)):
            thread = threading.Thread(target=self._sender, args=(i,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until every queued delivery was answered (or ``timeout`` passed)."""
        deadline = time.monotonic() + timeout
        while any(q.unfinished_tasks for q in self._queues) and time.monotonic() < deadline:
            if self.abort.wait(0.05):
                return

    def close(self, wait: float) -> None:
        """Stop every sender (after what is queued, unless aborted), waiting up to ``wait``."""
        for q in self._queues:
            if self.abort.is_set():  # a full queue must not hold up a quick stop
                _discard(q)
            q.put(None)
        for thread in self._threads:
            thread.join(timeout=wait)

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

    def _deliver(self, client: HttpClient, action: WebhookAction) -> None:
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
            try:
                response = client.post(request.url, content=request.body, headers=request.headers)
                status = response.status_code
            except TransportError as exc:
                log.warning("webhook %s not delivered: %s", action.delivery_id, exc)
                status = 0
            self.recorded.response(status, action.delivery_id if action.fault else None)
            # a sender stops at an answer: a bad delivery's 4xx, or a final one; no answer at
            # all (the receiver restarting) is sent again, the bad deliveries too
            if status != 0 and (action.fault or status not in _RETRYABLE):
                return
            if self.clock() >= give_up or self.abort.wait(min(5.0, 0.2 * 2**attempt)):
                return
            attempt += 1

    def _sender(self, index: int) -> None:
        with HttpClient(10.0, pool_size=1) as client:  # one sender thread, one connection
            while True:
                action = self._queues[index].get()
                try:
                    if action is None:
                        return
                    self._deliver(client, action)
                finally:
                    self._queues[index].task_done()


def _discard(pending: queue.Queue[WebhookAction | None]) -> None:
    """Drop what waits in ``pending`` (deliveries nobody will make after a SIGTERM)."""
    while True:
        try:
            pending.get_nowait()
        except queue.Empty:
            return
        pending.task_done()
