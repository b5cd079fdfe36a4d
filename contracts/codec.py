"""Generated Avro codecs: one encoder and decoder per schema, byte-identical to fastavro.

fastavro's compiled writer walks the schema for every datum and, for every ``["null", T]``
union, validates the datum against the candidate branches; with contracts that are mostly
optional fields that walk dominates the cost of an event. Here each parsed schema is turned
once into straight-line Python source (compiled by ``contracts.codegen``, which keeps it for
``interlock contracts codegen --show``): the union branch is chosen by ``is None``,
decimals go through ``int.to_bytes`` with the schema's fixed scale, instants through integer
arithmetic on ``datetime - epoch``, small varints come from a precomputed table.

The output is the same bytes ``fastavro.schemaless_writer`` writes and the same values
``fastavro.schemaless_reader`` returns for the same (writer == reader) schema; a property test
over every shipped contract holds it to that. Values of unusual types (a naive ``datetime``,
an ``int`` where a ``datetime`` is expected, ``bytes`` for a decimal) are handed to fastavro's
own logical-type functions, so they too come out the same.

Supported: null, boolean, int, long, float, double, bytes, string, enum, fixed, array,
record (named references included), unions of ``null`` and one other type, and the logical
types decimal (on bytes), date, timestamp-millis and timestamp-micros. Anything else (maps,
other unions, uuid, time-*, local-timestamp-*, decimal on fixed) makes ``compile_codec``
return ``None`` and the caller keeps using fastavro.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from contracts.codec_gen import CodecGenerator, UnsupportedSchemaError
from contracts.codegen import compile_generated

__all__ = ["AvroCodec", "UnsupportedSchemaError", "compile_codec"]


class AvroCodec:
    """The generated encoder and decoder of one schema.

    ``write(out, datum)`` appends to a ``bytearray``; ``encode(datum)`` returns the bytes;
    ``read(data, offset)`` returns ``(value, end)``. Records are dicts or objects whose
    ``__dict__`` holds the fields (the frozen contract models qualify).
    """

    def __init__(
        self,
        write: Callable[[Any, bytearray], bytearray],
        read: Callable[[bytes, int], tuple[Any, int]],
        source: str,
    ) -> None:
        self._write = write
        self._read = read
        self.source = source
        """The generated Python source (for debugging and review)."""

    def write(self, out: bytearray, datum: Any) -> None:
        """Append the encoding of ``datum`` to ``out``."""
        self._write(datum, out)

    def encode(self, datum: Any) -> bytes:
        """The encoding of ``datum`` (what ``schemaless_writer`` writes)."""
        return bytes(self._write(datum, bytearray()))

    def read(self, data: bytes, offset: int = 0) -> tuple[Any, int]:
        """Decode one datum at ``offset``: (value, end position).

        Raises:
            ValueError, IndexError, EOFError, UnicodeDecodeError: malformed or truncated data.
        """
        value, end = self._read(data, offset)
        if end > len(data):
            raise EOFError(f"truncated: needs {end} bytes, has {len(data)}")
        return value, end

    def decode(self, data: bytes) -> Any:
        """Decode ``data`` that holds exactly one datum."""
        value, end = self.read(data, 0)
        if end != len(data):
            raise ValueError(f"{len(data) - end} trailing bytes")
        return value


def compile_codec(schema: Any, name: str | None = None) -> AvroCodec | None:
    """The codec of a fastavro-parsed schema, or None when it uses an unsupported feature.

    Args:
        name: the name its source is kept under in ``contracts.codegen``; by default
            ``avro-codec:<record name>@<digest of the source>``, one per distinct codec.
    """
    gen = CodecGenerator()
    try:
        root = gen.resolve(schema)
        if isinstance(root, dict) and root.get("type") == "record":
            index = gen.record_fn(root)
            entry = [
                f"_write = _e{index}",
                f"_read = _d{index}",
            ]
        else:
            v = gen.var()
            enc = ["def _write(datum, out):", f"    {v} = datum", *gen.encode(root, v, "    ")]
            enc.append("    return out")
            dec = ["def _read(b, p):", *gen.decode(root, "value", "    "), "    return value, p"]
            entry = ["\n".join(enc), "\n".join(dec)]
    except UnsupportedSchemaError:
        return None
    source = "\n\n".join([*gen.enc_src, *gen.dec_src, *entry]) + "\n"
    if name is None:
        subject = root.get("name", root.get("type")) if isinstance(root, dict) else root
        digest = hashlib.sha256(source.encode()).hexdigest()[:8]
        name = f"avro-codec:{subject}@{digest}"
    ns = compile_generated(name, source, gen.ns)
    return AvroCodec(ns["_write"], ns["_read"], source)
