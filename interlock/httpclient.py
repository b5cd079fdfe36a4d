"""A pooled keep-alive HTTP/1.1 client for the calls made per event: urllib3, no retries.

The sinks call the ERP and the CRM once per command, from a pool of threads. httpx spends more
CPU per request than a urllib3 pool (its request and response models, the auth and redirect
layers, the h11 state machine; docs/performance/notes.md), so this hot path uses this client.
(The simulator's webhook senders, coroutines on one event loop, use aiohttp directly: the
same notes say why this blocking client does not hand its requests to an event loop.) Retries
stay with the callers, which know when a retry is safe (the sinks' tiers and circuit
breaker): urllib3's own are off, redirects are not followed, and every failure to get an
answer is one :class:`TransportError`. Like httpx, it goes through the proxy that ``HTTP_PROXY`` /
``HTTPS_PROXY`` name, except for the hosts in ``NO_PROXY``, and verifies TLS certificates.
"""

from __future__ import annotations

import json as jsonlib
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError as _Urllib3Error

__all__ = ["Answer", "HttpClient", "TransportError"]


class TransportError(Exception):
    """No answer: the connection was refused, reset or timed out, or the answer was cut off."""


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
        """The body as JSON; ValueError if it is not."""
        return jsonlib.loads(self.content)


class HttpClient:
    """Keep-alive connections per host, up to ``pool_size`` each, shared by the caller's threads.

    ``pool_size`` should be the most threads that call one host at once: a thread that finds
    every connection of its host in use opens one more and closes it after its request
    (urllib3 then logs a warning), rather than waiting for one.
    """

    def __init__(self, timeout: float, *, pool_size: int) -> None:
        options: dict[str, Any] = {
            "num_pools": 16,
            "maxsize": pool_size,
            "block": False,
            "retries": False,
            "timeout": urllib3.Timeout(connect=timeout, read=timeout),
        }
        self._pool = urllib3.PoolManager(**options)
        # the proxies the environment names, per scheme (as httpx reads them)
        self._proxies = {
            scheme: urllib3.ProxyManager(url, **options)
            for scheme, url in urllib.request.getproxies().items()
            if scheme in ("http", "https")
        }

    def _manager(self, url: str) -> urllib3.PoolManager:
        if not self._proxies:
            return self._pool
        parts = urlsplit(url)
        proxy = self._proxies.get(parts.scheme)
        if proxy is None or urllib.request.proxy_bypass(parts.hostname or ""):
            return self._pool
        return proxy

    def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send one request and read its answer; :class:`TransportError` if none came."""
        sent = dict(headers or {})
        if json is not None:
            content = jsonlib.dumps(json).encode()
            sent.setdefault("Content-Type", "application/json")
        try:
            response = self._manager(url).request(
                method, url, body=content, headers=sent, redirect=False, preload_content=True
            )
        except _Urllib3Error as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        return Answer(response.status, response.headers, response.data)

    def post(self, url: str, *, content: bytes, headers: Mapping[str, str] | None = None) -> Answer:
        return self.request("POST", url, content=content, headers=headers)

    def close(self) -> None:
        self._pool.clear()
        for proxy in self._proxies.values():
            proxy.clear()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
