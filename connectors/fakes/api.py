"""A fake ERP and CRM API: records every call, fails on request, honours Idempotency-Key.

The shape is the contract the sinks call (see docs/reference/http-apis.md):

- ``POST /orders`` → 201 ``{"order_number": "SO-000001", "status": "CONFIRMED"}``
- ``POST /orders/{order_number}/cancel`` → 200 ``{"order_number": ..., "status": "CANCELLED"}``
- ``PATCH /orders/{order_number}`` → 200 ``{"order_number": ..., "status": "CONFIRMED"}``
- ``PATCH /deals/{deal_id}`` → 200 ``{"deal_id": ..., "updated": [fields]}``

A request with an ``Idempotency-Key`` seen before gets the first successful answer again (no
second order). Failures are injected with :meth:`FakeApis.fail_next` (the next N calls answer a
status) and :meth:`FakeApis.fail_path` (calls to a path answer a status until cleared).
``delay_s`` makes every answer wait (asynchronously), and ``max_in_flight`` records how many
requests were being answered at once (to show a client's concurrency).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["Call", "FakeApis", "create_fake_app"]


@dataclass(frozen=True)
class Call:
    """One request the fake received, and what it answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class FakeApis:
    """State of the fake: calls, orders, injected failures, idempotent answers."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.orders: dict[str, dict[str, Any]] = {}
        self.deals: dict[str, dict[str, Any]] = {}
        self._answers: dict[str, tuple[int, Any]] = {}
        self._fail_next: list[int] = []
        self._fail_paths: dict[str, int] = {}
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self.delay_s = 0.0
        self.retry_after: str | None = None
        """``Retry-After`` sent with injected failures, when set."""
        self.in_flight = 0
        self.max_in_flight = 0

    def fail_next(self, n: int, status: int = 503) -> None:
        """The next ``n`` calls answer ``status``."""
        with self._lock:
            self._fail_next.extend([status] * n)

    def fail_path(self, path: str, status: int = 422) -> None:
        """Calls to ``path`` (exact, or a prefix ending in ``*``) answer ``status``."""
        with self._lock:
            self._fail_paths[path] = status

    def clear_failures(self) -> None:
        with self._lock:
            self._fail_next.clear()
            self._fail_paths.clear()

    def calls_to(self, method: str, path_prefix: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.path.startswith(path_prefix)]

    def _injected(self, path: str) -> int | None:
        if self._fail_next:
            return self._fail_next.pop(0)
        for pattern, status in self._fail_paths.items():
            if path == pattern or (pattern.endswith("*") and path.startswith(pattern[:-1])):
                return status
        return None

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        """Answer one request (thread-safe)."""
        with self._lock:
            key = headers.get("idempotency-key")
            status, payload = self._answer(method, path, key, body)
            self.calls.append(Call(method, path, headers, body, status))
            injected = isinstance(payload, dict) and payload.get("error") == "injected"
            after = self.retry_after if injected else None
        return JSONResponse(
            payload, status_code=status, headers={"Retry-After": after} if after else None
        )

    def _answer(self, method: str, path: str, key: str | None, body: bytes) -> tuple[int, Any]:
        injected = self._injected(path)
        if injected is not None:
            return injected, {"error": "injected", "status": injected}
        if key is not None and key in self._answers:
            return self._answers[key]
        try:
            data = json.loads(body) if body else {}
        except json.JSONDecodeError:
            return 400, {"error": "body is not JSON"}
        parts = [p for p in path.split("/") if p]
        result: tuple[int, Any]
        if method == "POST" and parts == ["orders"]:
            number = f"SO-{next(self._numbers):06d}"
            self.orders[number] = {**data, "status": "CONFIRMED"}
            result = 201, {"order_number": number, "status": "CONFIRMED"}
        elif len(parts) >= 2 and parts[0] == "orders" and parts[1] not in self.orders:
            result = 404, {"error": f"no order {parts[1]}"}
        elif method == "POST" and len(parts) == 3 and parts[2] == "cancel":
            self.orders[parts[1]]["status"] = "CANCELLED"
            result = 200, {"order_number": parts[1], "status": "CANCELLED"}
        elif method == "PATCH" and len(parts) == 2 and parts[0] == "orders":
            self.orders[parts[1]].update(data)
            result = 200, {"order_number": parts[1], "status": self.orders[parts[1]]["status"]}
        elif method == "PATCH" and len(parts) == 2 and parts[0] == "deals":
            self.deals.setdefault(parts[1], {}).update(data)
            result = 200, {"deal_id": parts[1], "updated": sorted(data)}
        else:
            result = 404, {"error": f"no route {method} {path}"}
        if key is not None and 200 <= result[0] < 300:
            self._answers[key] = result
        return result


def create_fake_app(state: FakeApis) -> Starlette:
    """The ASGI app of the fake ERP + CRM (serve it with ``ServerThread``)."""

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        state.in_flight += 1  # one event loop: no lock needed
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            if state.delay_s:
                await asyncio.sleep(state.delay_s)
            return state.handle(request.method, request.url.path, headers, body)
        finally:
            state.in_flight -= 1

    return Starlette(
        routes=[Route("/{path:path}", endpoint, methods=["GET", "POST", "PATCH", "PUT", "DELETE"])]
    )
