"""A kept-alive HTTP/1.1 connection for the simulated CRM's senders: one request at a time.

The simulator shares the machine's cores with the stack it loads, so what it spends per
delivery is taken from the stack. aiohttp's client spent about 85-95 µs of CPU per POST on
loopback; writing the request and parsing the answer with httptools (uvicorn's C parser, a
dependency already) spends about a quarter of that (docs/performance/notes.md). A sender posts
one delivery at a time, in order, so its connection needs no pool, no pipelining and no
redirects: a request out, an answer's status back, the body read and dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import urlsplit

import httptools

__all__ = ["Http1Connection"]


class _Answer(asyncio.Protocol):
    """Parses the answers on one connection; ``waiter`` gets the status of the next one."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[int] | None = None
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"unreadable answer: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail(ConnectionError(f"connection closed: {exc}" if exc else "connection closed"))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class Http1Connection:
    """POSTs to one origin over one kept-alive connection, opened again when it was closed.

    Args:
        url: the origin (``http://host:port``; a path is ignored).
        timeout: seconds to connect, and for the whole answer of each request.
    """

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"an http:// origin is needed, not {url!r}")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._host_header = f"Host: {parts.netloc}\r\n".encode()
        self._timeout = timeout
        self._answer: _Answer | None = None

    async def post(self, path: str, headers: Mapping[str, str], body: bytes) -> int:
        """The answer's status.

        Raises:
            ConnectionError: refused, reset or closed before the whole answer came.
            TimeoutError: no connection or no whole answer within the timeout.
        """
        loop = asyncio.get_running_loop()
        answer = self._answer
        if answer is None or answer.transport is None or answer.transport.is_closing():
            answer = await self._connect(loop)
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = b"".join((
            b"POST ", path.encode(), b" HTTP/1.1\r\n", self._host_header, head.encode(),
            b"Content-Length: ", str(len(body)).encode(), b"\r\n\r\n", body,
        ))  # fmt: skip
        waiter: asyncio.Future[int] = loop.create_future()
        answer.waiter = waiter
        assert answer.transport is not None
        answer.transport.write(request)
        timer = loop.call_later(self._timeout, _expire, waiter)
        try:
            status = await waiter
        except BaseException:
            self.close()  # an answer half read, or still to come, must not meet the next request
            raise
        finally:
            timer.cancel()
        if not answer.keep_alive:
            self.close()
        return status

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Answer:
        self.close()
        _transport, answer = await asyncio.wait_for(
            loop.create_connection(_Answer, self._host, self._port), self._timeout
        )
        self._answer = answer
        return answer

    def close(self) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and answer.transport is not None:
            answer.transport.close()


def _expire(waiter: asyncio.Future[int]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("no whole answer in time"))
