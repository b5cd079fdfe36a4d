"""The client's JSON both ways: the same values as the standard library's, written compact."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import pytest

from interlock.httpclient import Answer, json_body

pytestmark = pytest.mark.unit

_BODIES: list[Any] = [
    {"order_id": "o-1", "lines": [{"line_number": 1, "quantity": "3", "sku": None}]},
    {"name": "Königstraße “1” \u2028 ✓ 𝄞", "escaped": 'tab\t quote" back\\ nul\x00'},
    {"deep": {"list": [1, -2, 3.5, 1e-7, True, False, None, [], {}]}, "empty": ""},
    {2: "int key", None: "none key", True: "bool key"},  # orjson refuses: stdlib writes it
    {"big": 2**70, "negative": -(2**70)},  # beyond 64 bits: stdlib writes it
    [],
    "just a string",
]


@pytest.mark.parametrize("value", _BODIES, ids=range(len(_BODIES)))
def test_a_body_is_the_json_the_standard_library_made_of_it(value: Any) -> None:
    body = json_body(value)
    assert isinstance(body, bytes)
    assert json.loads(body) == json.loads(json.dumps(value))
    body.decode("utf-8")  # UTF-8, not escaped ASCII: still valid


def test_a_body_is_compact_utf8() -> None:
    assert json_body({"a": [1, None], "é": "✓"}) == '{"a":[1,null],"é":"✓"}'.encode()


def test_a_decimal_is_refused_as_json_dumps_refuses_it() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        json_body({"total": Decimal("1.10")})


def test_nan_is_sent_as_null() -> None:
    assert json_body({"x": math.nan, "y": math.inf}) == b'{"x":null,"y":null}'


_ANSWERS = [
    b'{"order_number": "SO-000001", "status": "REQUESTED"}',
    b'{"a":1,"a":2}',
    '{"name": "Königstraße \\u00e9 ✓"}'.encode(),
    b"[1, 2.5, -0, 1e-7, true, null]",
    b'  {"padded": true}  ',
    b'{"nan": NaN, "inf": Infinity}',  # not JSON; read as json.loads reads it
    b'"\\ud800"',  # a lone surrogate: orjson refuses, json.loads reads it
    b"\xef\xbb\xbf{}",  # a byte order mark: likewise
]


@pytest.mark.parametrize("content", _ANSWERS, ids=range(len(_ANSWERS)))
def test_an_answer_reads_as_json_loads_reads_it(content: bytes) -> None:
    got = Answer(200, {}, content).json()
    want = json.loads(content)
    assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)


@pytest.mark.parametrize(
    ("content", "why"),
    [(b"", "Expecting value"), (b"{", "Expecting property name"), (b'"\xff"', "utf-8")],
)
def test_an_answer_that_is_not_json_raises_the_standard_librarys_value_error(
    content: bytes, why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        Answer(200, {}, content).json()
