"""The fake ERP's HTTP API: a thin shell over :class:`ErpBook` (Starlette, the writes hot routes).

The contract the sinks call (``connectors/sinks/contract.py``): create an order with an
idempotency key, amend or cancel it, and page through the orders for reconciliation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ops.simulator.fake_erp import ErpBook
from ops.simulator.hot_routes import Answer, Handler, HotRoute, HotRoutes

__all__ = ["create_erp_app"]


def _object(raw: bytes) -> dict[str, Any] | None:
    """The request body as a JSON object (an empty body: ``{}``); None when it is not one."""
    try:
        doc = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


_NOT_AN_OBJECT: Answer = (400, {"error": "body is not a JSON object"})


def create_erp_app(book: ErpBook) -> HotRoutes:
    """The ERP API over ``book``: ``GET|POST /orders`` (``GET`` pages with ``?after=<order
    number>&limit=N``), ``GET|PATCH /orders/{n}``, ``POST /orders/{n}/cancel``.

    The writes the sinks make are served by :class:`HotRoutes` before Starlette; Starlette
    lists their routes too, and answers the reads and what the hot routes do not serve.
    """

    def create_order(_params: Mapping[str, str], raw: bytes, key: str | None) -> Answer:
        # a busy ERP answers 503 without Retry-After: a blip the sink retries inline
        body = _object(raw)
        return _NOT_AN_OBJECT if body is None else book.create(key, body)

    def amend_order(params: Mapping[str, str], raw: bytes, key: str | None) -> Answer:
        body = _object(raw)
        return _NOT_AN_OBJECT if body is None else book.amend(params["number"], key, body, "amend")

    def cancel_order(params: Mapping[str, str], raw: bytes, key: str | None) -> Answer:
        # a body that is not a JSON object is ignored
        return book.amend(params["number"], key, _object(raw) or {}, "cancel")

    async def answer(request: Request, handler: Handler) -> Response:
        key = request.headers.get("idempotency-key")
        status, doc = handler(request.path_params, await request.body(), key)
        return JSONResponse(doc, status_code=status)

    async def create(request: Request) -> Response:
        if request.method == "GET":
            after = request.query_params.get("after")
            try:
                limit = (
                    int(request.query_params["limit"]) if "limit" in request.query_params else None
                )
            except ValueError:
                return JSONResponse({"error": "limit is not a number"}, status_code=400)
            return JSONResponse(book.orders(after, limit))
        return await answer(request, create_order)

    async def amend(request: Request) -> Response:
        number = request.path_params["number"]
        if request.method == "GET":
            row = book.order(number)
            return JSONResponse(row or {"error": "not found"}, status_code=200 if row else 404)
        return await answer(request, amend_order)

    async def cancel(request: Request) -> Response:
        return await answer(request, cancel_order)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/orders", create, methods=["GET", "POST"]),
            Route("/orders/{number}", amend, methods=["GET", "PATCH"]),
            Route("/orders/{number}/cancel", cancel, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
    hot = [
        HotRoute(["POST"], "/orders", create_order),
        HotRoute(["PATCH"], "/orders/{number}", amend_order),
        HotRoute(["POST"], "/orders/{number}/cancel", cancel_order),
    ]
    return HotRoutes(app, hot)
