"""What a webhook request must look like before it is landed: header lengths, UTF-8, JSON depth.

Every check answers a 4xx that says why (:class:`WebhookError`), never a 5xx: a header longer
than its cap gets 431 ``header_too_large``; a body that is not UTF-8 gets 400 ``not_utf8``; a
body nested deeper than ``max_json_depth`` gets 400 ``json_too_deep``; a body that is not JSON
gets 400 ``malformed_json``.

The depth is measured on the bytes before anything is parsed, without recursion and in linear
time (strings are skipped by one regular expression that cannot backtrack, then the brackets are
summed by C-level iterators), so a body nested 100,000 levels deep costs a scan, not a
``RecursionError``. A body with no more opening brackets than the cap cannot nest deeper than
it, so it is not scanned at all (most webhook bodies). Only a body within the depth cap reaches
``json.loads``, which the settings keep far below Python's recursion limit
(``max_json_depth`` <= 256).

A Standard Webhooks body is only checked, not kept (:func:`check_json_body`): orjson reads it
first, and only what orjson refuses goes through ``json`` for the verdict and its message.
orjson accepts nothing ``json`` refuses (it is stricter: NaN, lone surrogates and integers
beyond a double's range are refused by it and accepted by ``json``), so the verdicts are the
same.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from itertools import accumulate
from typing import Any

import orjson

__all__ = [
    "WebhookError",
    "check_header_lengths",
    "check_json_body",
    "nesting_depth",
    "parse_json_body",
]


class WebhookError(Exception):
    """An answer other than 2xx: HTTP status, short error code and a one-line reason."""

    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason


# A JSON string, or an unterminated one up to the end: it always matches once started (a lone
# trailing backslash included), so a scan never restarts inside a string (no quadratic case).
_STRING = re.compile(rb'"(?:[^"\\]++|\\.|\\\Z)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DELTA = [0] * 256
_DELTA[ord("[")] = _DELTA[ord("{")] = 1
_DELTA[ord("]")] = _DELTA[ord("}")] = -1


def nesting_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in ``body`` (0 for a scalar), without parsing it.

    Brackets inside strings do not count. For a document that is not JSON the number is an upper
    bound of the depth a parser would reach before it fails, which is what the cap needs.
    UTF-8 never encodes another character with the bytes of ``"``, ``\\`` or brackets, so the
    scan works on the bytes.
    """
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_DELTA.__getitem__, brackets)), default=0)


def parse_json_body(body: bytes, max_depth: int) -> Any:
    """The JSON document in ``body``.

    Raises:
        WebhookError: 400 ``not_utf8``, ``json_too_deep`` or ``malformed_json``.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookError(
            400, "not_utf8", f"body is not UTF-8 (byte {exc.start}: {exc.reason})"
        ) from exc
    # a body cannot nest deeper than it has opening brackets: most are never scanned
    depth = 0 if body.count(b"[") + body.count(b"{") <= max_depth else nesting_depth(body)
    if depth > max_depth:
        raise WebhookError(
            400, "json_too_deep", f"body nests {depth} levels deep, more than {max_depth}"
        )
    try:
        return json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4,300 digits
        raise WebhookError(400, "malformed_json", f"body is not JSON: {exc}") from exc
    except RecursionError as exc:  # only if the depth cap were set above the stack's room
        raise WebhookError(400, "json_too_deep", "body nests too deeply to parse") from exc


def check_json_body(body: bytes, max_depth: int) -> None:
    """Refuse ``body`` as :func:`parse_json_body` would, without keeping the document.

    Raises:
        WebhookError: 400 ``not_utf8``, ``json_too_deep`` or ``malformed_json``.
    """
    if body.count(b"[") + body.count(b"{") <= max_depth:  # it cannot nest deeper than the cap
        try:
            orjson.loads(body)  # UTF-8 and JSON that json reads too
            return
        except orjson.JSONDecodeError:
            pass  # json's verdict, and its reason
    parse_json_body(body, max_depth)


def check_header_lengths(headers: Mapping[str, str], limits: Mapping[str, int]) -> None:
    """Refuse (431) a request whose header named in ``limits`` is longer than its limit.

    Header values are counted in bytes as they came on the wire (Starlette decodes them as
    Latin-1, one character per byte).
    """
    for name, limit in limits.items():
        value = headers.get(name)
        if value is not None and len(value) > limit:
            raise WebhookError(
                431, "header_too_large", f"{name} header is {len(value)} bytes, more than {limit}"
            )
