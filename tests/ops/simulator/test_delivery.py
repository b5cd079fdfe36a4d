"""The simulated CRM's webhook senders against a real receiver on loopback: order, retries, stop."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.fakes.server import ServerThread
from ops.simulator.actions import WebhookAction
from ops.simulator.delivery import WebhookSenders, WebhookTarget
from ops.simulator.truth import Recorded


class _Receiver:
    """Answers 503 to a delivery's first attempt when told to, 400 to a bad body, else 200.

    A delivery in ``held`` is answered only once ``released`` is set (``holding``: it came).
    """

    def __init__(self, busy_once: set[str]) -> None:
        self.seen: list[tuple[str, int]] = []  # (event id, answer) in arrival order
        self.arrived = threading.Condition()
        self.busy_once = busy_once
        self.held: set[str] = set()
        self.holding = threading.Event()
        self.released = threading.Event()

        async def hook(request: Request) -> Response:
            body = await request.body()
            try:
                event_id = str(json.loads(body)[0]["eventId"])
                if event_id in self.held:
                    self.holding.set()
                    await asyncio.to_thread(self.released.wait, 15.0)
                status = 503 if event_id in self.busy_once else 200
                self.busy_once.discard(event_id)
            except ValueError:
                event_id, status = "bad", 400
            with self.arrived:
                self.seen.append((event_id, status))
                self.arrived.notify_all()
            return JSONResponse({"status": status}, status_code=status)

        app = Starlette(routes=[Route("/webhooks/hubspot", hook, methods=["POST"])])
        self.server = ServerThread(app).start()

    def wait_for(self, n: int) -> list[tuple[str, int]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.seen) >= n, 15.0)
            return list(self.seen)


@pytest.fixture
def busy() -> set[str]:
    return set()


@pytest.fixture
def receiver(busy: set[str]) -> Iterator[_Receiver]:
    receiving = _Receiver(busy)
    yield receiving
    receiving.server.stop()


def _senders(
    receiver: _Receiver, abort: threading.Event, senders: int = 3, rate: float = 100.0
) -> WebhookSenders:
    target = WebhookTarget(receiver.server.url, "hubspot", "secret", "sim")
    return WebhookSenders(target, Recorded(), senders=senders, rate=rate, clock=time.monotonic,
                          wall=time.time, abort=abort)  # fmt: skip


def _change(company: int, n: int) -> WebhookAction:
    event = {"eventId": company * 1_000 + n, "objectId": company, "subscriptionType": "x"}
    return WebhookAction(f"d-{company}-{n}", (event,))


def test_each_companys_deliveries_arrive_in_order_and_every_answer_is_recorded(
    receiver: _Receiver, busy: set[str]
) -> None:
    busy.add("1002")  # the receiver is busy once for company 1's third change: retried
    senders = _senders(receiver, threading.Event())
    senders.start()
    try:
        for n in range(10):
            for company in (1, 2, 3, 4):
                senders.enqueue(_change(company, n))
        senders.settle(15.0)
    finally:
        senders.close(5.0)
    seen = receiver.wait_for(41)
    for company in (1, 2, 3, 4):
        delivered = [e for e, status in seen if status == 200 and int(e) // 1_000 == company]
        assert delivered == [str(company * 1_000 + n) for n in range(10)]
    assert ("1002", 503) in seen
    assert senders.recorded.responses == {"200": 40, "503": 1}


def test_a_bad_delivery_is_answered_once_and_not_sent_again(receiver: _Receiver) -> None:
    senders = _senders(receiver, threading.Event())
    senders.start()
    try:
        bad = WebhookAction("d-bad", ({"eventId": 1, "objectId": 9},), fault="bad_json")
        senders.enqueue(bad)
        senders.enqueue(_change(9, 1))  # same company: after the bad one
        senders.settle(15.0)
    finally:
        senders.close(5.0)
    assert receiver.wait_for(2) == [("bad", 400), ("9001", 200)]
    assert senders.recorded.rejected_responses == {"d-bad": 400}


def test_an_aborted_run_drops_what_is_queued_and_stops_quickly(receiver: _Receiver) -> None:
    abort = threading.Event()
    busy_forever = _change(5, 0)
    receiver.busy_once.add("5000")
    senders = _senders(receiver, abort, senders=1)
    senders.start()
    senders.enqueue(busy_forever)  # answered 503, then waits to retry
    for n in range(1, 10):
        senders.enqueue(_change(5, n))
    receiver.wait_for(1)
    abort.set()
    began = time.monotonic()
    senders.close(1.0)
    assert time.monotonic() - began < 5.0
    assert receiver.seen == [("5000", 503)]  # no retry after the abort, nothing queued sent


def test_a_delivery_made_before_the_senders_start_goes_out_once_they_do(
    receiver: _Receiver,
) -> None:
    senders = _senders(receiver, threading.Event())
    senders.enqueue(_change(7, 0))  # the fake CRM's server starts before the senders
    senders.start()
    try:
        senders.settle(15.0)
    finally:
        senders.close(5.0)
    assert receiver.wait_for(1) == [("7000", 200)]


def test_a_sender_holding_its_backlog_makes_the_next_delivery_wait_for_an_answer(
    receiver: _Receiver,
) -> None:
    receiver.held.add("6000")
    senders = _senders(receiver, threading.Event(), senders=1, rate=16.0)  # a backlog of 16
    senders.start()
    handed_over = threading.Event()

    def make_the_17th() -> None:
        senders.enqueue(_change(6, 16))
        handed_over.set()

    try:
        for n in range(16):  # the first is in flight, unanswered: it still counts
            senders.enqueue(_change(6, n))
        assert receiver.holding.wait(15.0)
        maker = threading.Thread(target=make_the_17th)
        maker.start()
        assert not handed_over.wait(0.3)  # waits for room...
        receiver.released.set()
        assert handed_over.wait(15.0)  # ...which the first answer makes
        maker.join(15.0)
        senders.settle(15.0)
    finally:
        receiver.released.set()
        senders.close(5.0)
    assert [e for e, _status in receiver.wait_for(17)] == [str(6_000 + n) for n in range(17)]


def test_deliveries_made_by_two_threads_at_once_all_go_out_in_order(receiver: _Receiver) -> None:
    senders = _senders(receiver, threading.Event(), senders=4, rate=1_000.0)
    senders.start()

    def make(companies: range) -> None:
        for burst in range(5):  # bursts apart: the loop goes idle between some of them
            for n in range(burst * 40, (burst + 1) * 40):
                for company in companies:
                    senders.enqueue(_change(company, n))
            receiver.wait_for(len(companies) * (burst + 1) * 40)

    makers = [threading.Thread(target=make, args=(companies,))
              for companies in (range(10, 13), range(20, 23))]  # fmt: skip
    try:
        for maker in makers:
            maker.start()
        for maker in makers:
            maker.join(30.0)
        senders.settle(15.0)
    finally:
        senders.close(5.0)
    seen = receiver.wait_for(1_200)
    for company in (10, 11, 12, 20, 21, 22):
        delivered = [e for e, _status in seen if int(e) // 1_000 == company]
        assert delivered == [str(company * 1_000 + n) for n in range(200)]
    assert senders.recorded.responses == {"200": 1_200}
