"""The senders' kept-alive HTTP/1.1 connection against real servers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from interlock.brokerprocess import free_port
from ops.simulator.http1 import Http1Connection

pytestmark = pytest.mark.integration

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """(head, body) of the next request, or None when the client closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head, await reader.readexactly(length)


def _serve(handler: Handler) -> Callable[[], Awaitable[asyncio.Server]]:
    async def start() -> asyncio.Server:
        return await asyncio.start_server(handler, "127.0.0.1", 0)

    return start


def _origin(server: asyncio.Server) -> str:
    host, port = server.sockets[0].getsockname()[:2]
    return f"http://{host}:{port}"


def test_posts_go_over_one_kept_alive_connection_with_their_bytes_intact() -> None:
    connections: list[int] = []
    received: list[tuple[bytes, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while (request := await _read_request(reader)) is not None:
            received.append(request)
            status = 400 if request[1] == b"bad" else 202
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok".encode())
        writer.close()

    async def run() -> list[int]:
        server = await _serve(handler)()
        connection = Http1Connection(_origin(server), timeout=5.0)
        bodies = [b'{"n": 1}', b"bad", b'{"n": "\xc3\xa9"}']
        statuses = [await connection.post("/hook?x=1", {"h-1": "v"}, b) for b in bodies]
        connection.close()
        server.close()
        return statuses

    assert asyncio.run(run()) == [202, 400, 202]
    assert len(connections) == 1
    assert [body for _, body in received] == [b'{"n": 1}', b"bad", b'{"n": "\xc3\xa9"}']
    head = received[0][0].decode()
    assert head.startswith("POST /hook?x=1 HTTP/1.1\r\n")
    assert "h-1: v\r\n" in head
    assert "Host: 127.0.0.1:" in head


def test_a_connection_the_server_closes_is_opened_again_for_the_next_post() -> None:
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        if await _read_request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    async def run() -> list[int]:
        server = await _serve(handler)()
        connection = Http1Connection(_origin(server), timeout=5.0)
        statuses = [await connection.post("/", {}, b"x") for _ in range(3)]
        server.close()
        return statuses

    assert asyncio.run(run()) == [200, 200, 200]
    assert len(connections) == 3


def test_no_answer_in_time_raises_and_the_next_post_uses_a_new_connection() -> None:
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        if len(connections) == 1:  # the first connection reads the request and never answers
            await _read_request(reader)
            await reader.read()
        elif await _read_request(reader) is not None:
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()
        writer.close()

    async def run() -> int:
        server = await _serve(handler)()
        connection = Http1Connection(_origin(server), timeout=0.3)
        with pytest.raises(TimeoutError):
            await connection.post("/", {}, b"x")
        status = await connection.post("/", {}, b"y")
        server.close()
        return status

    assert asyncio.run(run()) == 204
    assert len(connections) == 2


def test_a_refused_connection_and_a_garbled_answer_raise_connection_errors() -> None:
    async def garble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"this is not HTTP\r\n\r\n")
        await writer.drain()

    async def run() -> None:
        with pytest.raises(ConnectionError):
            await Http1Connection(f"http://127.0.0.1:{free_port()}", 2.0).post("/", {}, b"x")
        server = await _serve(garble)()
        with pytest.raises(ConnectionError):
            await Http1Connection(_origin(server), 2.0).post("/", {}, b"x")
        server.close()

    asyncio.run(run())
