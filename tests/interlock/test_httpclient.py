"""The pooled HTTP client of the per-event calls, against real HTTP servers on loopback."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from interlock.httpclient import HttpClient, TransportError


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless a handler closes
    seen: list[dict[str, Any]]
    release: threading.Event

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.seen.append(
            {
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body": body,
                "client": self.client_address,
            }
        )
        if self.path == "/hang":  # never answers until the test ends
            self.release.wait(30)
            return
        if self.path == "/cut":  # a status line, then the connection closes
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        answer = json.dumps({"echo": json.loads(body) if body else None}).encode()
        self.send_response(503 if self.path == "/busy" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Retry-After", "7")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_args: Any) -> None:
        pass


@contextmanager
def _server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    release = threading.Event()
    handler = type("Handler", (_Recorder,), {"seen": seen, "release": release})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_json_request_is_sent_and_its_answer_read_in_full() -> None:
    with _server() as (url, seen), HttpClient(5.0) as client:
        answer = client.run(
            client.request(
                "POST", url + "/orders", json={"quote": "q-1", "qty": 2}, headers={"X-Key": "k1"}
            )
        )
    assert answer.status_code == 200
    assert answer.is_success
    assert answer.json() == {"echo": {"quote": "q-1", "qty": 2}}
    assert json.loads(answer.text) == answer.json()
    assert answer.headers.get("retry-after") == "7"  # names are case-insensitive
    sent = seen[0]
    assert sent["path"] == "/orders"
    assert json.loads(sent["body"]) == {"quote": "q-1", "qty": 2}
    assert sent["headers"]["Content-Type"] == "application/json"
    assert sent["headers"]["X-Key"] == "k1"


def test_requests_to_one_host_reuse_a_kept_alive_connection() -> None:
    with _server() as (url, seen), HttpClient(5.0) as client:
        for n in range(5):
            assert client.run(client.post(url + "/x", content=b"%d" % n)).status_code == 200
    assert [s["body"] for s in seen] == [b"0", b"1", b"2", b"3", b"4"]
    assert len({s["client"] for s in seen}) == 1  # one connection, from one client port


def test_concurrent_requests_run_on_the_callers_thread_alone() -> None:
    """No request hands work to another thread (aiohttp's ``trust_env`` looks the proxy up in
    a worker thread per request; the client reads the environment once instead)."""
    before = set(threading.enumerate())

    async def batch(client: HttpClient, url: str) -> list[int]:
        answers = await asyncio.gather(
            *(client.post(url + "/x", content=b"%d" % n) for n in range(8))
        )
        return [a.status_code for a in answers]

    with _server() as (url, seen), HttpClient(5.0) as client:
        server_threads = set(threading.enumerate())
        assert client.run(batch(client, url)) == [200] * 8
        assert client.run(batch(client, url)) == [200] * 8
        ours = {t for t in threading.enumerate() if not t.name.startswith("Thread-")}
        assert ours <= server_threads | before, ours - server_threads - before
    assert sorted(s["body"] for s in seen) == sorted([b"%d" % n for n in range(8)] * 2)


def test_an_error_status_and_a_redirect_are_answers_not_failures() -> None:
    with _server() as (url, _seen), HttpClient(5.0) as client:
        busy = client.run(client.post(url + "/busy", content=b"{}"))
        moved = client.run(client.post(url + "/moved", content=b"{}"))
    assert busy.status_code == 503
    assert not busy.is_success
    assert moved.status_code == 302  # not followed: the caller decides
    assert moved.headers.get("Location") == "/elsewhere"


def test_a_body_that_is_not_json_raises_value_error() -> None:
    with _server() as (url, _seen), HttpClient(5.0) as client:
        answer = client.run(client.request("POST", url + "/moved", content=b""))
    with pytest.raises(ValueError, match="Expecting value"):
        answer.json()


def test_a_refused_connection_is_a_transport_error() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    with (
        HttpClient(2.0) as client,
        pytest.raises(TransportError, match=re.escape(f"127.0.0.1:{port}: Connection refused")),
    ):
        client.run(client.post(f"http://127.0.0.1:{port}/x", content=b"{}"))


def test_no_answer_within_the_timeout_is_a_transport_error() -> None:
    with (
        _server() as (url, seen),
        HttpClient(0.3) as client,
        pytest.raises(TransportError, match=r"[Tt]imeout"),
    ):
        client.run(client.post(url + "/hang", content=b"{}"))
    assert len(seen) == 1  # sent once: no retry of a POST


def test_an_answer_cut_off_is_a_transport_error_and_the_next_request_goes_through() -> None:
    with _server() as (url, seen), HttpClient(5.0) as client:
        with pytest.raises(TransportError):
            client.run(client.post(url + "/cut", content=b"{}"))
        assert client.run(client.post(url + "/ok", content=b"{}")).status_code == 200
    assert [s["path"] for s in seen] == ["/cut", "/ok"]


def test_a_proxy_named_in_the_environment_is_used_except_for_no_proxy_hosts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _server() as (proxy_url, seen):
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.setenv("NO_PROXY", "direct.invalid")
        with HttpClient(5.0) as client:
            answer = client.run(client.post("http://erp.invalid/orders", content=b"{}"))
            # not proxied: the name does not resolve
            with pytest.raises(TransportError, match=r"direct\.invalid"):
                client.run(client.post("http://direct.invalid/orders", content=b"{}"))
    assert answer.status_code == 200
    assert [s["path"] for s in seen] == ["http://erp.invalid/orders"]  # asked of the proxy
