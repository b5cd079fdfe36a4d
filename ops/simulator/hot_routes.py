"""The fakes' busiest routes as plain ASGI, in front of their Starlette apps.

The sinks call the fake CRM's ``PATCH /deals/{id}`` about once per simulated action, and the
fake ERP's ``POST /orders`` often too; the simulator shares the cores with the stack it loads,
so what it spends per call is taken from the stack. On these calls Starlette's middleware,
router, ``Request`` and ``JSONResponse`` cost more than the fakes' own handlers. A
:class:`HotRoutes` answers them itself: the path matched with the pattern Starlette compiles
for it (``starlette.routing.compile_path``), the body read whole, the answer written as
``JSONResponse`` writes it (``content-length``, ``content-type: application/json``, compact
JSON). Everything else goes on to the Starlette app, so its other routes, 404s and 405s are
unchanged; the outage middleware wraps both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping, Sequence
from typing import Any

import orjson
from starlette.routing import compile_path

__all__ = ["Answer", "Handler", "HotRoute", "HotRoutes", "json_answer"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

Answer = tuple[int, Any]
"""An answer's status and its JSON document."""
Handler = Callable[[Mapping[str, str], bytes, str | None], Answer]
"""A hot route's handler: the path parameters, the raw body, the ``Idempotency-Key``."""

_KEY_HEADER = b"idempotency-key"


class HotRoute:
    """``handler`` answers ``methods`` on ``path`` (Starlette's syntax: ``/orders/{number}``)."""

    def __init__(self, methods: Collection[str], path: str, handler: Handler) -> None:
        self.methods = frozenset(methods)
        self.path = path
        self.handler = handler
        self._regex, _format, _convertors = compile_path(path)

    def params(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when this route serves ``method path``; None when it does not."""
        if method not in self.methods:
            return None
        found = self._regex.match(path)
        return None if found is None else found.groupdict()


def json_answer(doc: Any) -> bytes:
    """The body ``JSONResponse`` writes for ``doc``: compact JSON, UTF-8, no ASCII escapes."""
    return orjson.dumps(doc)


class HotRoutes:
    """Serves ``routes`` itself (the first that matches) and passes the rest on to ``app``."""

    def __init__(self, app: App, routes: Sequence[HotRoute]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            for route in self.routes:
                params = route.params(method, path)
                if params is not None:
                    await _serve(route.handler, params, scope, receive, send)
                    return
        await self.app(scope, receive, send)


async def _serve(
    handler: Handler, params: dict[str, str], scope: Scope, receive: Receive, send: Send
) -> None:
    body = await _body(receive)
    if body is None:  # the client went away before its body came: nobody to answer
        return
    status, doc = handler(params, body, _key(scope))
    content = json_answer(doc)
    headers = [(b"content-length", str(len(content)).encode()),
               (b"content-type", b"application/json")]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


async def _body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _key(scope: Scope) -> str | None:
    """The first ``Idempotency-Key`` header, as Starlette's ``Headers.get`` reads it."""
    for name, value in scope["headers"]:
        if name == _KEY_HEADER:
            return str(value.decode("latin-1"))
    return None
