"""The mapping stage's per-record reading as pure logic: the body parser and the headers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.webhooks.mapping_stage import landed_headers
from interlock.jsonread import loads_like_json as parse_body

pytestmark = pytest.mark.unit

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: beyond 64 bits too
    | st.integers(min_value=-(2**65), max_value=2**65)
    | st.floats()  # NaN and infinities are written as json writes them
    | st.text(st.characters(codec=None, exclude_categories=())),  # lone surrogates too
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _read(read: Any, body: bytes) -> tuple[str, str]:
    """What a parser makes of ``body``: the repr of its value (ints stay ints, -0.0 stays
    -0.0, key order counts), or its error's type and message."""
    try:
        return "value", repr(read(body))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        return type(exc).__name__, str(exc)


@given(json_values, st.booleans())
@settings(max_examples=500, deadline=None)
def test_the_body_parser_reads_every_document_as_json_does(doc: Any, ascii_only: bool) -> None:
    body = json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    assert _read(parse_body, body) == _read(json.loads, body)


@given(st.binary(max_size=40))
@settings(max_examples=500, deadline=None)
def test_the_body_parser_refuses_what_json_refuses_with_its_error(body: bytes) -> None:
    assert _read(parse_body, body) == _read(json.loads, body)


@pytest.mark.parametrize(
    "body",
    [
        b"18446744073709551615",  # the largest integer orjson keeps as an int
        b"18446744073709551616",  # orjson: a float
        b"-9223372036854775809",  # orjson: a float
        b'{"id": 123456789012345678901234567890}',
        b"NaN",
        b"[-Infinity]",
        b'"\\ud800"',
        b'"\xed\xa0\x80"',  # a surrogate in UTF-8, which json reads
        b"\xef\xbb\xbf{}",
        b'{"a": 1, "b": 2, "a": 3}',
        b"1e400",
        b"1" * 5000,  # more digits than Python converts: ValueError, as json
        b"",
        b"[" * 2000 + b"]" * 2000,  # deeper than orjson reads
    ],
)
def test_the_body_parser_agrees_with_json_where_orjson_differs(body: bytes) -> None:
    assert _read(parse_body, body) == _read(json.loads, body)


def test_headers_are_read_in_one_pass_first_value_wins() -> None:
    headers = [
        ("interlock.webhook.source", None),
        ("interlock.webhook.source", b"acme"),
        ("interlock.webhook.source", b"other"),
        ("interlock.webhook.id", b""),
        ("interlock.webhook.id", b"msg_2"),
        ("webhook-timestamp", b""),
        ("webhook-timestamp", b"1700000000"),
        ("webhook-timestamp", b"1800000000"),
    ]
    assert landed_headers(headers) == {
        "interlock.webhook.source": b"acme",
        "interlock.webhook.id": b"",  # an empty value counts (as no id), but a timestamp not
        "webhook-timestamp": b"1700000000",
    }
    assert landed_headers([]) == {}
