"""Scheduled outages of the fake APIs: parsed from their spec, answered on time."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ops.simulator.outage import ApiOutage, OutageMiddleware, parse_outage

pytestmark = pytest.mark.unit


def test_a_spec_names_target_status_length_and_start() -> None:
    assert parse_outage("erp:429:60@20") == ApiOutage("erp", 429, 60.0, 20.0)
    assert parse_outage(" crm:503:300@12.5 ").until_s == 312.5
    assert parse_outage("crm:503:300@30").spec() == "crm:503:300@30"


@pytest.mark.parametrize("bad", ["erp:429:60", "db:500:1@1", "erp:404:1@1", "erp:abc:1@1"])
def test_a_bad_spec_says_what_is_expected(bad: str) -> None:
    with pytest.raises(ValueError, match=r"TARGET:STATUS|not one of"):
        parse_outage(bad)


def _client(outages: list[ApiOutage], now: list[float], seen: list[int]) -> TestClient:
    async def orders(_request: object) -> JSONResponse:
        return JSONResponse({"ok": True}, status_code=201)

    async def healthz(_request: object) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/orders", orders, methods=["POST"]), Route("/healthz", healthz)])
    wrapped = OutageMiddleware(app, "erp", outages, lambda: now[0], seen.append)
    return TestClient(wrapped)


def test_the_api_answers_the_outage_status_only_while_it_lasts() -> None:
    now: list[float] = [0.0]
    seen: list[int] = []
    outages = [
        parse_outage("erp:500:10@5"),
        parse_outage("erp:429:10@15"),
        parse_outage("crm:503:99@0"),
    ]
    client = _client(outages, now, seen)
    assert client.post("/orders").status_code == 201  # the CRM's outage is not the ERP's
    now[0] = 5.0
    assert client.post("/orders").status_code == 500
    assert client.get("/healthz").status_code == 200  # the health endpoint stays up
    now[0] = 16.0
    throttled = client.post("/orders")
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "5"
    now[0] = 25.0
    assert client.post("/orders").status_code == 201
    assert seen == [500, 429]
