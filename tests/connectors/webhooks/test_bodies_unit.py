"""The receiver's body checks and answers as pure logic: depth, UTF-8, 5xx counted."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from connectors.webhooks.app import create_app
from connectors.webhooks.bodies import (
    WebhookError,
    check_json_body,
    nesting_depth,
    parse_json_body,
)
from connectors.webhooks.health import ServiceHealth
from connectors.webhooks.landing import RawRequest
from interlock.instruments import Instruments
from interlock.metrics import new_registry
from tests.connectors.webhooks.conftest import standard_headers, webhook_settings

pytestmark = pytest.mark.unit

json_documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@given(json_documents, st.booleans())
@settings(max_examples=500, deadline=None)
def test_the_depth_scan_agrees_with_the_parsed_document(doc: Any, ascii_only: bool) -> None:
    body = json.dumps(doc, ensure_ascii=ascii_only).encode()
    assert nesting_depth(body) == _depth(doc)
    assert parse_json_body(body, max(1, _depth(doc))) == doc


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"[" * 100_000, "json_too_deep"),
        (b'{"a":' * 65 + b"1" + b"}" * 65, "json_too_deep"),
        (b'["\xff"]', "not_utf8"),
        (b"\xef\xbb\xbf{}", "malformed_json"),  # a UTF-8 byte order mark is not JSON
        (b'"\\', "malformed_json"),
        (b"", "malformed_json"),
        (b"1" * 5000, "malformed_json"),  # more digits than Python converts
    ],
)
def test_bodies_that_cannot_be_taken_get_400_with_a_reason(body: bytes, error: str) -> None:
    with pytest.raises(WebhookError) as refused:
        parse_json_body(body, 64)
    assert refused.value.status == 400
    assert refused.value.error == error


@given(json_documents, st.integers(min_value=1, max_value=8))
@settings(max_examples=300, deadline=None)
def test_a_body_is_refused_exactly_when_it_nests_deeper_than_the_cap(doc: Any, cap: int) -> None:
    body = json.dumps(doc).encode()
    if _depth(doc) > cap:
        with pytest.raises(WebhookError, match="levels deep"):
            parse_json_body(body, cap)
    else:
        assert parse_json_body(body, cap) == doc


def test_brackets_in_strings_do_not_count() -> None:
    assert nesting_depth(b'{"a": "[[[[{{{{", "b": ["]]]]\\"[["]}') == 2


class _BrokenLanding:
    """A landing with a bug: the answer must still be one counted line of JSON."""

    def __init__(self) -> None:
        self.health = ServiceHealth()

    async def land(self, request: RawRequest) -> None:
        raise RuntimeError("a bug in the landing")


def test_an_unexpected_error_is_a_counted_500_with_a_json_reason() -> None:
    instruments = Instruments(new_registry(process=False), "unit")
    app = create_app(
        webhook_settings(),
        _BrokenLanding(),  # type: ignore[arg-type]
        instruments,
        clock=time.time,
    )
    body = b'{"type": "company.updated"}'
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.post(
            "/webhooks/standard/acme", content=body, headers=standard_headers(body, "m-1")
        )
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal_error", "reason": "RuntimeError"}
    counted = instruments.registry.get_sample_value(
        "interlock_webhook_requests_total", {"source": "acme", "status": "500"}
    )
    assert counted == 1.0


def test_a_dead_service_says_so_on_healthz_and_readyz() -> None:
    landing = _BrokenLanding()
    app = create_app(
        webhook_settings(),
        landing,
        Instruments(new_registry(process=False), "unit"),  # type: ignore[arg-type]
    )
    stopped: list[bool] = []
    landing.health.on_dead(lambda: stopped.append(True))
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready"}
        landing.health.fail("mapper", "failed 5 times in a row")
        health, ready = client.get("/healthz"), client.get("/readyz")
    assert stopped == [True]
    assert health.status_code == ready.status_code == 503
    assert health.json() == {"status": "dead", "reasons": ["mapper: failed 5 times in a row"]}
    assert ready.json()["status"] == "not_ready"


def _verdict(check: Any, body: bytes, cap: int) -> str:
    try:
        check(body, cap)
    except WebhookError as refused:
        return f"{refused.status} {refused.error}: {refused.reason}"
    return "taken"


@pytest.mark.parametrize(
    "body",
    [
        b'{"type":"quote.accepted","data":{"id":"q-1","lines":[{"qty":2}]}}',
        b"\t[1]\r\n",
        b'{"\xc3\xa9":"\x7f"}',
        b'"\\ud800"',  # a lone surrogate: json reads it, orjson does not
        b"[NaN]",
        b"[Infinity]",
        b"[1e400]",
        b"1" * 400,  # an integer beyond a double's range
        b"1" * 5000,  # beyond what json converts
        b"\xef\xbb\xbf{}",
        b'["\xff"]',
        b'"\xed\xa0\x80"',  # a UTF-8-encoded surrogate
        b"{} x",
        b"{}\x00",
        b"[1,]",
        b"[01]",
        b"",
        b'{"a":' * 65 + b"1" + b"}" * 65,
        b"[" * 100_000,
    ],
)
def test_checking_a_body_gives_the_verdict_and_reason_of_parsing_it(body: bytes) -> None:
    assert _verdict(check_json_body, body, 64) == _verdict(parse_json_body, body, 64)


@given(st.binary(max_size=64) | json_documents.map(lambda d: json.dumps(d).encode()))
@settings(max_examples=500, deadline=None)
def test_any_body_is_checked_as_it_is_parsed(body: bytes) -> None:
    for cap in (1, 3, 64):
        assert _verdict(check_json_body, body, cap) == _verdict(parse_json_body, body, cap)
