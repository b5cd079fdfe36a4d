"""Generated lines that encode a record whose field values generated code computes.

The CDC writers (``connectors.cdc.fastpath``) compute an event's values into locals; the
``Emitter`` walks the contract's schema and writes, per field, the lines
``contracts.codec_gen.CodecGenerator`` emits for that field's schema, so the bytes are the
codec's bytes. A field's value is one of:

- the name of a local (``str``), encoded with the field's schema;
- ``Const``: known when compiling; a run of them is encoded once, as one bytes literal;
- ``Record``: a nested record, written inline (where it is present, or as a list of one);
- ``Lowered``: a local already holding what Avro writes for the value (a decimal's unscaled
  bytes), encoded with that underlying type;
- ``Encoded``: an expression whose value is the field's whole encoding.

Generated code refers to ``_MissingFieldError`` for a record that must be present.
"""

from __future__ import annotations

from typing import Any

from contracts.codec_gen import CodecGenerator, UnsupportedSchemaError, encode_long

__all__ = [
    "Const",
    "Emitter",
    "Encoded",
    "Lowered",
    "Record",
    "field_types",
    "lowered_type",
    "non_null",
    "record_schema",
    "register_names",
    "value_encoder",
]


class Const:
    """A value known when the writer is compiled."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class Record:
    """A record field whose own fields are ``values``.

    ``present`` is an expression that is true when the record is there (None: always); a
    record that is ``many`` is written as a list of it (or an empty list).
    """

    __slots__ = ("many", "present", "values")

    def __init__(self, values: dict[str, Any], present: str | None = None, many: bool = False):
        self.values = values
        self.present = present
        self.many = many


class Lowered:
    """A local that holds the value already as the ``base`` type Avro writes it as (or None)."""

    __slots__ = ("base", "local")

    def __init__(self, local: str, base: str) -> None:
        self.local = local
        self.base = base


class Encoded:
    """An expression whose value is the field already encoded (bytes)."""

    __slots__ = ("expr",)

    def __init__(self, expr: str) -> None:
        self.expr = expr


class Emitter:
    """Writes the lines encoding a record, given each field's value (see the module doc).

    ``lines`` are the encoding lines (appending to ``out``); ``const_fns`` the sources of the
    functions ``_k<i>(out)`` whose output the caller binds to ``_K<i>`` once compiled.
    """

    def __init__(self, gen: CodecGenerator) -> None:
        self.gen = gen
        self.lines: list[str] = []
        self.pending: list[tuple[Any, Any]] = []
        self.const_fns: list[str] = []

    def flush(self, ind: str) -> None:
        """Encode the pending constant fields once (at compile time) as one bytes literal."""
        if not self.pending:
            return
        index = len(self.const_fns)
        body = [f"def _k{index}(out):"]
        for schema, value in self.pending:
            v = self.gen.var()
            body.append(f"    {v} = {self.gen.const(value)}")
            body.extend(self.gen.encode(schema, v, "    "))
        body.append("    return out")
        self.const_fns.append("\n".join(body))
        self.lines.append(f"{ind}out += _K{index}")
        self.pending = []

    def record(self, schema: dict[str, Any], values: dict[str, Any], ind: str) -> None:
        """Lines encoding the record ``schema``; unnamed fields take their default, or null."""
        for field in schema["fields"]:
            name, ftype = field["name"], field["type"]
            if name in values:
                value = values[name]
            elif "default" in field:
                value = Const(field["default"])
            elif isinstance(ftype, list) and "null" in ftype:
                value = Const(None)
            else:
                raise UnsupportedSchemaError(f"no value for field {name!r}")
            if isinstance(value, Const):
                self.pending.append((ftype, value.value))
            elif isinstance(value, Record):
                self.nested(name, ftype, value, ind)
            elif isinstance(value, Encoded):
                self.flush(ind)
                self.lines.append(f"{ind}out += {value.expr}")
            elif isinstance(value, Lowered):
                self.flush(ind)
                lowered = lowered_type(self.gen, ftype, value.base)
                self.lines.extend(self.gen.encode(lowered, value.local, ind))
            else:
                self.flush(ind)
                self.lines.extend(self.gen.encode(ftype, value, ind))

    def nested(self, name: str, ftype: Any, value: Record, ind: str) -> None:
        """A record field (or a list of one record), written inline where it is present."""
        resolved = self.gen.resolve(ftype)
        null_at = None
        if isinstance(resolved, list):
            null_at, other = self.gen.union_parts(resolved)
            resolved = self.gen.resolve(other)
        if value.many:
            if not (isinstance(resolved, dict) and resolved.get("type") == "array"):
                raise UnsupportedSchemaError(f"field {name!r} is not an array")
            if null_at is not None:  # a list is never null
                self.pending.append(("long", 1 - null_at))
            item = self.gen.resolve(resolved["items"])
            self.flush(ind)
            self.lines.append(f"{ind}if {value.present}:")
            self.pending.append(("long", 1))  # one block of one item
            self.record(record_schema(item, name), value.values, ind + "    ")
            self.flush(ind + "    ")
            self.pending.append(("long", 0))  # end of the blocks
            return
        record = record_schema(resolved, name)
        if value.present is None or null_at is None:
            if value.present is not None:
                self.flush(ind)
                self.lines.append(
                    f"{ind}if not ({value.present}): raise _MissingFieldError({name!r})"
                )
            if null_at is not None:
                self.pending.append(("long", 1 - null_at))
            self.record(record, value.values, ind)
            return
        self.flush(ind)
        self.lines.append(f"{ind}if {value.present}:")
        self.pending.append(("long", 1 - null_at))
        self.record(record, value.values, ind + "    ")
        self.flush(ind + "    ")
        self.lines += [f"{ind}else:", f"{ind}    out += {encode_long(null_at)!r}"]


def record_schema(schema: Any, name: str) -> dict[str, Any]:
    if not (isinstance(schema, dict) and schema.get("type") == "record"):
        raise UnsupportedSchemaError(f"field {name!r} is not a record")
    return schema


def lowered_type(gen: CodecGenerator, ftype: Any, base: str) -> Any:
    """``ftype`` with its non-null branch replaced by ``base``."""
    resolved = gen.resolve(ftype)
    if isinstance(resolved, list):
        null_at, _other = gen.union_parts(resolved)
        return ["null", base] if null_at == 0 else [base, "null"]
    return base


def non_null(gen: CodecGenerator, ftype: Any) -> Any:
    """The resolved schema of a field's values other than null."""
    resolved = gen.resolve(ftype)
    if isinstance(resolved, list):
        resolved = gen.resolve(gen.union_parts(resolved)[1])
    if isinstance(resolved, dict) and isinstance(resolved.get("type"), (dict, list)):
        return non_null(gen, resolved["type"])
    return resolved


def register_names(gen: CodecGenerator, schema: Any) -> None:
    """Make every named type of ``schema`` resolvable by name, wherever it is used first."""
    if isinstance(schema, list):
        for branch in schema:
            register_names(gen, branch)
    elif isinstance(schema, dict):
        gen.resolve(schema)
        kind = schema.get("type")
        if kind == "record":
            for field in schema["fields"]:
                register_names(gen, field["type"])
        elif kind == "array":
            register_names(gen, schema["items"])
        elif kind == "map":
            register_names(gen, schema["values"])
        elif isinstance(kind, (dict, list)):
            register_names(gen, kind)


def field_types(gen: CodecGenerator, ftype: Any, name: str) -> dict[str, Any]:
    """Field name -> type of the record ``ftype`` (through a union with null or an array)."""
    record = non_null(gen, ftype)
    if isinstance(record, dict) and record.get("type") == "array":
        record = non_null(gen, record["items"])
    return {f["name"]: f["type"] for f in record_schema(record, name)["fields"]}


def value_encoder(gen: CodecGenerator, ftype: Any, name: str) -> str:
    """Source of ``name(value) -> bytes``: the encoding of one value of ``ftype``."""
    return "\n".join(
        [f"def {name}(v):", "    out = bytearray()", *gen.encode(ftype, "v", "    "),
         "    return bytes(out)"]
    )  # fmt: skip
