"""The fakes' hot routes answer as the Starlette routes behind them do, byte for byte.

Each fake is served twice on loopback from the same start: once whole (hot routes first) and
once as its Starlette app alone; the same calls must get the same statuses, headers and
bodies, and leave the same recordings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from connectors.fakes.server import ServerThread
from ops.simulator.erp_api import create_erp_app
from ops.simulator.fake_crm import CrmDesk, create_crm_app
from ops.simulator.fake_erp import ErpBook, ErpTimings
from ops.simulator.hot_routes import HotRoutes
from ops.simulator.truth import Recorded

pytestmark = pytest.mark.integration

Call = tuple[str, str, bytes | None, dict[str, str]]
_JSON = {"Content-Type": "application/json"}
_ORDER = (
    b'{"quote_id": "q-1", "quote_revision": 1, "crm_record_id": "555", "currency": "EUR",'
    b' "erp_customer_number": "C000001", "customer_po_number": "PO-\xc3\xa9",'
    b' "lines": [{"sku": "SKU-1", "quantity": "3", "unit_price": "12.50"}]}'
)


def _answers(app: Any, calls: list[Call]) -> list[tuple[int, list[tuple[str, str]], bytes]]:
    seen = []
    with (
        ServerThread(app, date_header=False, server_header=False) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        for method, path, body, headers in calls:
            answer = http.request(method, path, content=body, headers=headers)
            # a redirect names the server's origin, which differs between the two
            headers = [(k, v.replace(server.url, "")) for k, v in answer.headers.multi_items()]
            seen.append((answer.status_code, headers, answer.content))
    return seen


@contextmanager
def _both(make: Callable[[], tuple[HotRoutes, Recorded]]) -> Iterator[Callable[[list[Call]], None]]:
    hot, hot_recorded = make()
    plain, plain_recorded = make()

    def check(calls: list[Call]) -> None:
        assert _answers(hot, calls) == _answers(plain.app, calls)

    yield check
    assert hot_recorded.snapshot() == plain_recorded.snapshot()


def _crm() -> tuple[HotRoutes, Recorded]:
    recorded = Recorded()
    desk = CrmDesk(recorded, lambda _action: None, "4242", wall=lambda: 1000.0)
    desk.know_deal("555", "77")
    return create_crm_app(desk), recorded


def _erp() -> tuple[HotRoutes, Recorded]:
    recorded = Recorded()
    timings = ErpTimings(unavailable=0.3, order_hold=0.3)
    book = ErpBook(lambda _change: None, recorded, seed=5, timings=timings, clock=lambda: 1.0)
    return create_erp_app(book), recorded


def test_the_crm_write_backs_answer_as_starlette_does() -> None:
    key = {**_JSON, "Idempotency-Key": "k1"}
    calls: list[Call] = [
        ("PATCH", "/deals/555", b'{"status": "CONFIRMED", "name": "\xc3\xa9t\xc3\xa9"}', key),
        ("PATCH", "/deals/555", b'{"status": "CONFIRMED"}', key),  # the same key again
        ("PUT", "/companies/9", b'{"x": 1}', {"Idempotency-Key": "k2"}),
        ("POST", "/deals/556", b"", {}),  # no body, no key
        ("PATCH", "/deals/555", b"{not json", key),
        ("PATCH", "/deals/555", b"[1, 2]", key),
        ("PATCH", "/deals/555/", b"{}", key),  # Starlette's slash redirect
        ("GET", "/deals/555", None, {}),  # 405 from Starlette
        ("DELETE", "/deals/555", None, {}),
        ("GET", "/deals", None, {}),
    ]
    with _both(_crm) as check:
        check(calls)


def test_the_erp_writes_answer_as_starlette_does() -> None:
    calls: list[Call] = [
        *[("POST", "/orders", _ORDER, {**_JSON, "Idempotency-Key": f"k{n}"}) for n in range(8)],
        ("POST", "/orders", _ORDER, {"Idempotency-Key": "k1"}),  # a replay
        ("POST", "/orders", _ORDER, {}),  # no key
        ("POST", "/orders", b'{"lines": []}', {"Idempotency-Key": "bad"}),
        ("POST", "/orders", b"[]", {"Idempotency-Key": "arr"}),
        ("POST", "/orders", b"{nope", {"Idempotency-Key": "nope"}),
        ("PATCH", "/orders/SO-000001", b'{"quote_revision": 2}', {"Idempotency-Key": "a1"}),
        ("PATCH", "/orders/SO-999999", b"{}", {"Idempotency-Key": "a2"}),
        ("POST", "/orders/SO-000002/cancel", b"[]", {"Idempotency-Key": "c1"}),
        ("PUT", "/orders", b"{}", {}),  # 405 from Starlette
        ("GET", "/orders/SO-000001", None, {}),
        ("GET", "/orders?limit=2", None, {}),
    ]
    with _both(_erp) as check:
        check(calls)
