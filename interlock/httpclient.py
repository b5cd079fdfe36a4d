"""A pooled keep-alive HTTP/1.1 client for the calls made per event: aiohttp on a loop of its own.

The sinks call the ERP and the CRM once per command, several calls of a batch at a time. The
calls are coroutines on one event loop that the client owns and the caller's thread drives
(:meth:`HttpClient.run`), so a batch's concurrent calls cost no thread and no hand-off between
threads: a thread per call, each with its blocking urllib3 connection, spent more CPU per call
in the stack than the calls themselves (docs/performance/notes.md). Retries stay with the
callers, which know when a retry is safe (the sinks' tiers and circuit breaker): redirects are
not followed, and every failure to get an answer is one :class:`TransportError`. (aiohttp sends
an idempotent request, PUT or GET, once more when a kept-alive connection turns out closed
before it answered, as RFC 9112 allows; POST and PATCH it never resends.) Like httpx, it goes
through the proxy that ``HTTP_PROXY`` / ``HTTPS_PROXY`` name, except for the hosts in
``NO_PROXY``, and verifies TLS certificates.

JSON goes through orjson both ways (:func:`json_body`, :meth:`Answer.json`), with the standard
library for what orjson refuses or reads otherwise, so every value the standard library read or
wrote before is read or written the same (as JSON; orjson writes it compact and in UTF-8).
"""

from __future__ import annotations

import json as jsonlib
import os
import urllib.request
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import orjson
import uvloop

from interlock.jsonread import loads_like_json

__all__ = ["JSON_CONTENT_TYPE", "Answer", "HttpClient", "TransportError", "json_body"]

#: The ``Content-Type`` of a JSON request body.
JSON_CONTENT_TYPE = "application/json"

T = TypeVar("T")


class TransportError(Exception):
    """No answer: the connection was refused, reset or timed out, or the answer was cut off."""


def json_body(value: Any) -> bytes:
    """``value`` as a JSON request body: UTF-8, compact.

    orjson writes it; what orjson refuses (keys that are not strings, integers beyond 64 bits)
    the standard library writes, so a body is the same JSON as ``json.dumps`` made of it. A
    ``Decimal`` is refused by both (TypeError: dump models with ``mode="json"``); NaN and the
    infinities, which JSON has no literal for, become ``null``; orjson also writes some values
    that ``json.dumps`` refused (``datetime``, ``UUID``, dataclasses).
    """
    try:
        return orjson.dumps(value)
    except TypeError:
        return jsonlib.dumps(value).encode()


class Answer:
    """An answer read in full: its status, headers (case-insensitive) and body."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON, read as ``json.loads`` reads it (by orjson where it reads it alike:
        :func:`interlock.jsonread.loads_like_json`); ValueError if it is not JSON."""
        return loads_like_json(self.content)


class HttpClient:
    """Keep-alive connections per host, used by coroutines on the client's own event loop.

    The caller's thread runs a coroutine that makes requests with :meth:`run` (one thread at a
    time). The client does not bound the connections per host: its callers bound the calls in
    flight per target, and a request opens a connection only when every kept-alive one of its
    host is busy. ``timeout`` bounds connecting and each wait for the answer's bytes.
    """

    def __init__(self, timeout: float) -> None:
        self._loop = uvloop.new_event_loop()
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=timeout, sock_read=timeout
        )
        self._session: aiohttp.ClientSession | None = None
        # The proxies the environment names, per scheme, read once: aiohttp's own trust_env
        # looks them (and ~/.netrc) up again in a worker thread on every request.
        self._proxies = {
            scheme: url
            for scheme, url in urllib.request.getproxies().items()
            if scheme in ("http", "https")
        }
        self._proxy_of: dict[tuple[str, str], str | None] = {}

    def _proxy(self, url: str) -> str | None:
        """The proxy for ``url``'s scheme unless ``NO_PROXY`` names its host (cached per host)."""
        if not self._proxies:
            return None
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "")
        if key not in self._proxy_of:
            proxy = self._proxies.get(parts.scheme)
            bypass = proxy is None or urllib.request.proxy_bypass(key[1])
            self._proxy_of[key] = None if bypass else proxy
        return self._proxy_of[key]

    def run(self, work: Awaitable[T]) -> T:
        """Run ``work`` (a coroutine making requests) on the client's loop until it is done."""
        return self._loop.run_until_complete(work)

    def _open(self) -> aiohttp.ClientSession:
        # made on the loop, at first use: a session belongs to the loop it was made on
        session = self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=self._timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return session

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send one request and read its answer; :class:`TransportError` if none came.

        ``json`` is encoded by :func:`json_body` and sent as ``application/json`` unless
        ``headers`` name a ``Content-Type``. A caller that sends many bodies can encode them
        itself and pass ``content`` with headers that it built once: they are sent as given.
        """
        session = self._session or self._open()
        sent = headers
        if json is not None:
            content = json_body(json)
            sent = dict(headers or {})
            sent.setdefault("Content-Type", JSON_CONTENT_TYPE)
        try:
            async with session.request(
                method,
                url,
                data=content,
                headers=sent,
                allow_redirects=False,
                proxy=self._proxy(url),
            ) as response:
                body = await response.read()
                return Answer(response.status, response.headers, body)
        except aiohttp.ClientConnectorError as exc:  # say why, as the system names it
            errno = exc.errno
            why = os.strerror(errno) if errno is not None and errno > 0 else str(exc.os_error)
            raise TransportError(f"cannot connect to {exc.host}:{exc.port}: {why}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc

    async def post(
        self, url: str, *, content: bytes, headers: Mapping[str, str] | None = None
    ) -> Answer:
        return await self.request("POST", url, content=content, headers=headers)

    def close(self) -> None:
        """Close the connections and the loop (from the thread that ran the requests)."""
        if self._loop.is_closed():
            return
        if self._session is not None:
            self._loop.run_until_complete(self._session.close())
            self._session = None
        self._loop.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
