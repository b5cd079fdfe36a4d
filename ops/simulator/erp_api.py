"""The fake ERP's HTTP API: a thin Starlette shell over :class:`ErpBook`.

The contract the sinks call (``connectors/sinks/contract.py``): create an order with an
idempotency key, amend or cancel it, and page through the orders for reconciliation.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ops.simulator.fake_erp import ErpBook

__all__ = ["create_erp_app"]


def create_erp_app(book: ErpBook) -> Starlette:
    """The ERP API over ``book``: ``GET|POST /orders`` (``GET`` pages with ``?after=<order
    number>&limit=N``), ``GET|PATCH /orders/{n}``, ``POST /orders/{n}/cancel``."""

    async def body_of(request: Request) -> dict[str, Any] | None:
        try:
            doc = json.loads(await request.body() or b"{}")
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    def answer(result: tuple[int, dict[str, Any]]) -> Response:
        status, doc = result
        # A busy ERP answers 503 without Retry-After: a blip the sink retries inline.
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
        body = await body_of(request)
        if body is None:
            return JSONResponse({"error": "body is not a JSON object"}, status_code=400)
        return answer(book.create(request.headers.get("idempotency-key"), body))

    async def amend(request: Request) -> Response:
        number = request.path_params["number"]
        if request.method == "GET":
            row = book.order(number)
            return JSONResponse(row or {"error": "not found"}, status_code=200 if row else 404)
        body = await body_of(request)
        if body is None:
            return JSONResponse({"error": "body is not a JSON object"}, status_code=400)
        return answer(book.amend(number, request.headers.get("idempotency-key"), body, "amend"))

    async def cancel(request: Request) -> Response:
        body = await body_of(request) or {}
        key = request.headers.get("idempotency-key")
        return answer(book.amend(request.path_params["number"], key, body, "cancel"))

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/orders", create, methods=["GET", "POST"]),
            Route("/orders/{number}", amend, methods=["GET", "PATCH"]),
            Route("/orders/{number}/cancel", cancel, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
