"""The source generator behind ``contracts.codec``: Avro schema -> straight-line Python.

``CodecGenerator`` writes, per schema, the Python source of an encoder (appending to a
``bytearray`` named ``out``) and a decoder (reading ``b`` at position ``p``); ``compile_codec``
in ``contracts.codec`` assembles them, and ``contracts.codegen`` compiles them. Other generators
(e.g. the CDC stage's per-mapping writers) reuse ``CodecGenerator.encode`` to emit the encoding
of one field whose value they compute themselves, so their bytes are the codec's bytes by
construction.
"""

from __future__ import annotations

import struct
from datetime import UTC, date, datetime, timedelta
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal
from typing import Any

from fastavro.write import LOGICAL_WRITERS

__all__ = ["CodecGenerator", "UnsupportedSchemaError", "encode_long"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAYS_SHIFT = date(1970, 1, 1).toordinal()
_MS = timedelta(milliseconds=1)
_US = timedelta(microseconds=1)
_WIDE = Context(prec=999_999, Emax=MAX_EMAX, Emin=MIN_EMIN)
_SMALL = 8192
"""Non-negative ints below this have their zig-zag varint precomputed (one or two bytes)."""


class UnsupportedSchemaError(Exception):
    """The schema uses a feature the generator does not handle (fastavro stays in charge)."""


def _varint(n: int) -> bytes:
    """Zig-zag varint of a signed int, as Avro writes int and long."""
    n = n * 2 if n >= 0 else -n * 2 - 1
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_VARINT = tuple(_varint(i) for i in range(_SMALL))
_TAGGED = 256
_SECOND_BRANCH_SIZE = tuple(b"\x02" + _VARINT[i] for i in range(_TAGGED))
"""Union branch 1 followed by a size below ``_TAGGED``: how ``["null", "string"]`` values start."""


_LARGE: dict[int, bytes] = {}
"""Varints of recent large values: instants repeat within a batch (ingested_at, commit time)."""


def _long(n: int) -> bytes:
    if 0 <= n < _SMALL:
        return _VARINT[n]
    encoded = _LARGE.get(n)
    if encoded is None:
        if len(_LARGE) >= 4096:
            _LARGE.clear()
        encoded = _LARGE[n] = _varint(n)
    return encoded


def _read_long(b: bytes, p: int) -> tuple[int, int]:
    """Decode a zig-zag varint at ``p``: (value, next position)."""
    shift = 0
    n = 0
    while True:
        c = b[p]
        p += 1
        n |= (c & 0x7F) << shift
        if c < 0x80:
            break
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")
    return (n >> 1) ^ -(n & 1), p


def _read_size(b: bytes, p: int) -> tuple[int, int]:
    n, p = _read_long(b, p)
    if n < 0:
        raise ValueError(f"negative length {n}")
    return n, p


_DECIMALS: dict[tuple[Decimal, int, int], tuple[Decimal, bytes]] = {}
"""Encodings of recent decimals per (value, scale, precision): quantities and prices recur."""


def _decimal_bytes(v: Any, scale: int, precision: int, schema: dict[str, Any]) -> bytes:
    """fastavro's ``prepare_bytes_decimal``, same checks and same byte count."""
    if type(v) is not Decimal:
        return LOGICAL_WRITERS["bytes-decimal"](v, schema)
    if v.is_finite():
        key = (v, scale, precision)
        hit = _DECIMALS.get(key)
        # Equal decimals may differ in exponent (2 and 2.00), which the checks below see:
        # a hit counts only for the same exponent.
        if hit is not None and hit[0].same_quantum(v):
            return hit[1]
        encoded = _checked_decimal_bytes(v, scale, precision)
        if len(_DECIMALS) >= 4096:
            _DECIMALS.clear()
        _DECIMALS[key] = (v, encoded)
        return encoded
    return _checked_decimal_bytes(v, scale, precision)


def _checked_decimal_bytes(v: Decimal, scale: int, precision: int) -> bytes:
    _sign, digits, exp = v.as_tuple()
    if len(digits) > precision:
        raise ValueError("The decimal precision is bigger than allowed by schema")
    if exp + scale < 0:  # type: ignore[operator]
        raise ValueError("Scale provided in schema does not match the decimal")
    unscaled = int(v.scaleb(scale, _WIDE))
    size = (abs(unscaled).bit_length() + 8) // 8
    return unscaled.to_bytes(size, "big", signed=True)


def _read_decimal(seen: dict[bytes, Decimal], raw: bytes, scale: int, ctx: Context) -> Decimal:
    """The decimal of an unscaled big-endian ``raw``, kept in ``seen`` (one field's recent
    values: quantities and prices recur, and a ``Decimal`` is immutable)."""
    value = ctx.create_decimal(int.from_bytes(raw, "big", signed=True)).scaleb(-scale, ctx)
    if len(seen) >= 4096:
        seen.clear()
    seen[raw] = value
    return value


def _ts_millis(v: Any, schema: dict[str, Any]) -> int:
    if type(v) is datetime and v.tzinfo is not None:
        return (v - _EPOCH) // _MS
    return LOGICAL_WRITERS["long-timestamp-millis"](v, schema)


def _ts_micros(v: Any, schema: dict[str, Any]) -> int:
    if type(v) is datetime and v.tzinfo is not None:
        return (v - _EPOCH) // _US
    return LOGICAL_WRITERS["long-timestamp-micros"](v, schema)


def _date(v: Any, schema: dict[str, Any]) -> int:
    if type(v) is date:
        return v.toordinal() - _DAYS_SHIFT
    return LOGICAL_WRITERS["int-date"](v, schema)


_PRIMITIVES = frozenset(("null", "boolean", "int", "long", "float", "double", "bytes", "string"))
_HANDLED_LOGICAL = {
    ("bytes", "decimal"),
    ("int", "date"),
    ("long", "timestamp-millis"),
    ("long", "timestamp-micros"),
}


class CodecGenerator:
    """Writes the Python source of one schema's encoder and decoder."""

    def __init__(self) -> None:
        self.ns: dict[str, Any] = {
            "_VARINT": _VARINT,
            "_SMALL": _SMALL,
            "_TAGGED": _TAGGED,
            "_SECOND_BRANCH_SIZE": _SECOND_BRANCH_SIZE,
            "_long": _long,
            "_read_long": _read_long,
            "_read_size": _read_size,
            "_decimal_bytes": _decimal_bytes,
            "_read_decimal": _read_decimal,
            "_ts_millis": _ts_millis,
            "_ts_micros": _ts_micros,
            "_date": _date,
            "_EPOCH": _EPOCH,
            "_MS": _MS,
            "_US": _US,
            "_datetime": datetime,
            "_DAYS_SHIFT": _DAYS_SHIFT,
            "_td": timedelta,
            "_fromordinal": date.fromordinal,
            "_from_bytes": int.from_bytes,
            "_pack_f": struct.Struct("<f").pack,
            "_pack_d": struct.Struct("<d").pack,
            "_unpack_f": struct.Struct("<f").unpack_from,
            "_unpack_d": struct.Struct("<d").unpack_from,
            "_Decimal": Decimal,
        }
        self.named: dict[str, dict[str, Any]] = {}
        self.record_fns: dict[str, int] = {}
        self.enc_src: list[str] = []
        self.dec_src: list[str] = []
        self.tmp = 0

    def const(self, value: Any) -> str:
        name = f"_c{len(self.ns)}"
        self.ns[name] = value
        return name

    def var(self) -> str:
        self.tmp += 1
        return f"v{self.tmp}"

    def resolve(self, schema: Any) -> Any:
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            try:
                return self.named[schema]
            except KeyError:
                raise UnsupportedSchemaError(f"unknown named type {schema!r}") from None
        if isinstance(schema, dict) and schema.get("type") in ("record", "enum", "fixed"):
            self.named.setdefault(schema["name"], schema)
        return schema

    def typed(self, schema: Any) -> Any:
        """``schema`` resolved: a union's list, or a dict whose ``type`` names the kind."""
        schema = self.resolve(schema)
        if isinstance(schema, str):
            return {"type": schema}
        if isinstance(schema, dict) and isinstance(schema["type"], (dict, list)):
            return self.typed(schema["type"])
        return schema

    def record_fn(self, schema: dict[str, Any]) -> int:
        """Index of the generated ``_e<i>``/``_d<i>`` pair of a record (generated once)."""
        name = schema["name"]
        if name in self.record_fns:
            return self.record_fns[name]
        index = len(self.record_fns)
        self.record_fns[name] = index
        enc = [f"def _e{index}(d, out):", "    if type(d) is not dict: d = d.__dict__"]
        dec = [f"def _d{index}(b, p):", "    d = {}"]
        for field in schema["fields"]:
            fname = field["name"]
            ftype = field["type"]
            if "default" in field:
                get = f"d.get({fname!r}, {self.const(field['default'])})"
            elif isinstance(ftype, list) and "null" in ftype:
                get = f"d.get({fname!r})"
            else:
                get = f"d[{fname!r}]"
            v = self.var()
            enc.append(f"    {v} = {get}")
            enc.extend(self.encode(ftype, v, "    "))
            dec.extend(self.decode(ftype, f"d[{fname!r}]", "    "))
        enc.append("    return out")
        dec.append("    return d, p")
        self.enc_src.append("\n".join(enc))
        self.dec_src.append("\n".join(dec))
        return index

    def encode(self, schema: Any, v: str, ind: str) -> list[str]:
        """Lines appending the encoding of the value named ``v`` to ``out``."""
        schema = self.typed(schema)
        if isinstance(schema, list):
            return self.encode_union(schema, v, ind)
        kind, logical = schema["type"], schema.get("logicalType")
        if logical is not None and f"{kind}-{logical}" in LOGICAL_WRITERS:
            if (kind, logical) not in _HANDLED_LOGICAL:
                raise UnsupportedSchemaError(f"logical type {logical} on {kind}")
            if logical == "decimal":
                args = f"{schema.get('scale', 0)}, {schema['precision']}, {self.const(schema)}"
                raw = self.var()
                return [
                    f"{ind}{raw} = _decimal_bytes({v}, {args})",
                    *self.encode_size(raw, ind),
                    f"{ind}out += {raw}",
                ]
            fn = {"date": "_date", "timestamp-millis": "_ts_millis"}.get(logical, "_ts_micros")
            n = self.var()
            call = f"{fn}({v}, {self.const(schema)})"
            if logical != "date":  # the common case of _ts_millis/_ts_micros, inline
                unit = "_MS" if logical == "timestamp-millis" else "_US"
                call = (
                    f"({v} - _EPOCH) // {unit} "
                    f"if type({v}) is _datetime and {v}.tzinfo is not None else {call}"
                )
            return [f"{ind}{n} = {call}", *self.encode_long(n, ind)]
        if kind == "null":
            return []
        if kind == "boolean":
            return [f"{ind}out += b'\\x01' if {v} else b'\\x00'"]
        if kind in ("int", "long"):
            return self.encode_long(v, ind)
        if kind == "float":
            return [f"{ind}out += _pack_f(float({v}))"]
        if kind == "double":
            return [f"{ind}out += _pack_d(float({v}))"]
        if kind == "string":
            s = self.var()
            return [f"{ind}{s} = {v}.encode()", *self.encode_size(s, ind), f"{ind}out += {s}"]
        if kind == "bytes":
            return [*self.encode_size(v, ind), f"{ind}out += {v}"]
        if kind == "fixed":
            size = int(schema["size"])
            return [
                f"{ind}if len({v}) != {size}: raise ValueError('fixed of wrong size')",
                f"{ind}out += {v}",
            ]
        if kind == "enum":
            table = {s: _long(i) for i, s in enumerate(schema["symbols"])}
            return [f"{ind}out += {self.const(table)}[{v}]"]
        if kind == "array":
            item = self.var()
            return [
                f"{ind}if {v}:",
                *self.encode_size(v, ind + "    "),
                f"{ind}    for {item} in {v}:",
                *self.encode(schema["items"], item, ind + "        "),
                f"{ind}out += b'\\x00'",
            ]
        if kind == "record":
            return [f"{ind}_e{self.record_fn(schema)}({v}, out)"]
        raise UnsupportedSchemaError(f"type {kind!r}")

    def encode_long(self, v: str, ind: str) -> list[str]:
        return [f"{ind}out += _VARINT[{v}] if 0 <= {v} < _SMALL else _long({v})"]

    def encode_size(self, v: str, ind: str) -> list[str]:
        """Lines appending ``len(v)`` as a varint: a table lookup, since sizes are mostly small."""
        n = self.var()
        return [f"{ind}{n} = len({v})", f"{ind}out += _VARINT[{n}] if {n} < _SMALL else _long({n})"]

    def union_parts(self, schema: list[Any]) -> tuple[int, Any]:
        if len(schema) != 2 or "null" not in schema:
            raise UnsupportedSchemaError("only unions of null and one other type are generated")
        null_at = schema.index("null")
        return null_at, schema[1 - null_at]

    def encode_union(self, schema: list[Any], v: str, ind: str) -> list[str]:
        null_at, other = self.union_parts(schema)
        other_tag = _long(1 - null_at)
        resolved = self.resolve(other)
        if null_at == 0 and resolved in ("string", "bytes"):
            # The most common field of all: branch index and size appended as one.
            raw = self.var() if resolved == "string" else v
            n = self.var()
            return [
                f"{ind}if {v} is None:",
                f"{ind}    out += b'\\x00'",
                f"{ind}else:",
                *([f"{ind}    {raw} = {v}.encode()"] if raw != v else []),
                f"{ind}    {n} = len({raw})",
                f"{ind}    if {n} < _TAGGED:",
                f"{ind}        out += _SECOND_BRANCH_SIZE[{n}]",
                f"{ind}    else:",
                f"{ind}        out += b'\\x02'",
                f"{ind}        out += _long({n})",
                f"{ind}    out += {raw}",
            ]
        return [
            f"{ind}if {v} is None:",
            f"{ind}    out += {_long(null_at)!r}",
            f"{ind}else:",
            f"{ind}    out += {other_tag!r}",
            *(self.encode(other, v, ind + "    ") or [f"{ind}    pass"]),
        ]

    def decode(self, schema: Any, target: str, ind: str) -> list[str]:
        """Lines reading one value at ``p`` of ``b`` into ``target`` and advancing ``p``."""
        schema = self.typed(schema)
        if isinstance(schema, list):
            null_at, other = self.union_parts(schema)
            c = self.var()
            return [
                f"{ind}{c} = b[p]",
                f"{ind}p += 1",
                f"{ind}if {c} == {null_at * 2}:",
                f"{ind}    {target} = None",
                f"{ind}elif {c} == {(1 - null_at) * 2}:",
                *(self.decode(other, target, ind + "    ")),
                f"{ind}else:",
                f"{ind}    raise ValueError('union index out of range')",
            ]
        kind, logical = schema["type"], schema.get("logicalType")
        if logical is not None and f"{kind}-{logical}" in LOGICAL_WRITERS:
            if logical == "decimal":
                scale, precision = schema.get("scale", 0), schema["precision"]
                ctx = self.const(Context(prec=precision))
                seen = self.const({})
                n, raw = self.var(), self.var()
                return [
                    *self.read_size(n, ind),
                    f"{ind}{raw} = b[p:p + {n}]",
                    f"{ind}{target} = {seen}.get({raw}) or _read_decimal({seen}, {raw}, {scale}, "
                    f"{ctx})",
                    f"{ind}p += {n}",
                ]
            n = self.var()
            read = self.read_long(n, ind)
            if logical == "date":
                return [*read, f"{ind}{target} = _fromordinal({n} + _DAYS_SHIFT)"]
            if logical == "timestamp-millis":
                return [*read, f"{ind}{target} = _EPOCH + _td(microseconds={n} * 1000)"]
            return [*read, f"{ind}{target} = _EPOCH + _td(microseconds={n})"]
        if kind == "null":
            return [f"{ind}{target} = None"]
        if kind == "boolean":
            return [f"{ind}{target} = b[p] != 0", f"{ind}p += 1"]
        if kind in ("int", "long"):
            n = self.var()
            return [*self.read_long(n, ind), f"{ind}{target} = {n}"]
        if kind in ("float", "double"):
            size, fn = (4, "_unpack_f") if kind == "float" else (8, "_unpack_d")
            return [
                f"{ind}if p + {size} > len(b): raise EOFError",
                f"{ind}{target} = {fn}(b, p)[0]",
                f"{ind}p += {size}",
            ]
        if kind in ("string", "bytes"):
            n = self.var()
            conv = "str(b[p:p + {n}], 'utf-8')" if kind == "string" else "bytes(b[p:p + {n}])"
            return [
                *self.read_size(n, ind),
                f"{ind}{target} = {conv.format(n=n)}",
                f"{ind}p += {n}",
            ]
        if kind == "fixed":
            size = int(schema["size"])
            return [f"{ind}{target} = bytes(b[p:p + {size}])", f"{ind}p += {size}"]
        if kind == "enum":
            symbols = self.const(tuple(schema["symbols"]))
            n = self.var()
            return [*self.read_size(n, ind), f"{ind}{target} = {symbols}[{n}]"]
        if kind == "array":
            items, count, i, item = self.var(), self.var(), self.var(), self.var()
            return [
                f"{ind}{items} = []",
                f"{ind}while True:",
                *self.read_long(count, ind + "    "),
                f"{ind}    if {count} == 0: break",
                f"{ind}    if {count} < 0:",
                f"{ind}        {count} = -{count}",
                f"{ind}        _, p = _read_long(b, p)",
                f"{ind}    for {i} in range({count}):",
                *self.decode(schema["items"], item, ind + "        "),
                f"{ind}        {items}.append({item})",
                f"{ind}{target} = {items}",
            ]
        if kind == "record":
            return [f"{ind}{target}, p = _d{self.record_fn(schema)}(b, p)"]
        raise UnsupportedSchemaError(f"type {kind!r}")

    def read_long(self, n: str, ind: str) -> list[str]:
        return [
            f"{ind}{n} = b[p]",
            f"{ind}if {n} < 0x80:",
            f"{ind}    p += 1",
            f"{ind}    {n} = ({n} >> 1) ^ -({n} & 1)",
            f"{ind}else:",
            f"{ind}    {n}, p = _read_long(b, p)",
        ]

    def read_size(self, n: str, ind: str) -> list[str]:
        # One-byte even varints are the common, non-negative case; the rest is checked.
        return [
            f"{ind}{n} = b[p]",
            f"{ind}if {n} < 0x80 and not {n} & 1:",
            f"{ind}    p += 1",
            f"{ind}    {n} >>= 1",
            f"{ind}else:",
            f"{ind}    {n}, p = _read_size(b, p)",
        ]


encode_long = _long
"""The zig-zag varint bytes of an Avro int/long (small values precomputed, recent ones cached)."""
