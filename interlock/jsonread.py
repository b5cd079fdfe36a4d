"""JSON read as ``json.loads`` reads it, by orjson wherever orjson reads it alike."""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["loads_like_json"]

_DIGITS = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_NUMBER = b"0" * 19
"""19 digits in a row: an integer orjson may read as a float (outside [-2**63, 2**64))."""


def loads_like_json(value: bytes) -> Any:
    """``json.loads(value)``, read by orjson where orjson reads it alike.

    orjson refuses what ``json`` refuses, and more (NaN, lone surrogates, other encodings than
    UTF-8): what it refuses is read by ``json``, for its value or its error. It reads an integer
    outside 64 bits as a float, where ``json`` keeps the int: a body with 19 digits in a row
    (which any such integer has) is read by ``json`` too.

    Raises:
        json.JSONDecodeError, UnicodeDecodeError: as ``json.loads``.
    """
    if _LONG_NUMBER not in value.translate(_DIGITS):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            pass
    return json.loads(value)
