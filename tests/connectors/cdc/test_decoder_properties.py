"""Property: no bytes make the Debezium decoder fail other than with a DecodeError it names.

``EnvelopeDecoder.decode`` returns a change (or a control record, or None for a tombstone) or
raises an :class:`~contracts.errors.InterlockError` (``DecodeError``, ``SchemaUnknownError``),
which the CDC stage dead-letters with its reason. Anything else (``AttributeError`` on a source
block that is a list, ``RecursionError`` on deep nesting, ``OverflowError`` on ``1e999``) is a
bug: the record would be dead-lettered as ``PROCESSING_FAILED`` with a traceback instead.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.cdc import envelope
from connectors.cdc.envelope import EnvelopeDecoder
from contracts.errors import InterlockError

pytestmark = pytest.mark.unit

RESULTS = tuple(
    getattr(envelope, name) for name in ("ChangeEvent", "ControlRecord") if hasattr(envelope, name)
)
LOGICAL = [
    "org.apache.kafka.connect.data.Decimal",
    "io.debezium.data.VariableScaleDecimal",
    "io.debezium.time.Date",
    "org.apache.kafka.connect.data.Date",
    "io.debezium.time.Time",
    "io.debezium.time.MicroTime",
    "io.debezium.time.NanoTime",
    "io.debezium.time.Timestamp",
    "io.debezium.time.MicroTimestamp",
    "io.debezium.time.NanoTimestamp",
    "org.apache.kafka.connect.data.Timestamp",
    "io.debezium.time.ZonedTimestamp",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", "AAE=", "__debezium_unavailable_value", "true", "last", "1e999", "-0"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
rows = st.one_of(
    json_values, st.dictionaries(st.sampled_from(["id", "total", "day", "name"]), json_values)
)
sources = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "connector": st.sampled_from(["postgresql", "mysql", "sqlserver", "oracle", "db2", 7]),
            "table": json_values,
            "schema": json_values,
            "db": json_values,
            "ts_ms": json_values,
            "lsn": json_values,
            "txId": json_values,
            "snapshot": json_values,
            "file": json_values,
            "pos": json_values,
            "gtid": json_values,
            "commit_lsn": json_values,
            "scn": json_values,
        },
    ),
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "op": st.one_of(st.sampled_from(["c", "u", "d", "r", "t", "x", ""]), json_values),
        "before": rows,
        "after": rows,
        "source": sources,
        "transaction": st.one_of(
            json_values,
            st.fixed_dictionaries({}, optional={"id": json_values, "total_order": json_values}),
        ),
        "ts_ms": json_values,
        "status": st.sampled_from(["BEGIN", "END", "x"]),
        "id": json_values,
        "ddl": json_values,
    },
)
column_schemas = st.fixed_dictionaries(
    {"field": st.sampled_from(["id", "total", "day", "name"])},
    optional={
        "name": st.one_of(st.sampled_from(LOGICAL), json_values),
        "parameters": st.one_of(
            json_values,
            st.fixed_dictionaries({}, optional={"scale": json_values}),
        ),
        "type": json_values,
    },
)
image_schemas = st.fixed_dictionaries(
    {"field": st.sampled_from(["before", "after"])},
    optional={"fields": st.one_of(json_values, st.lists(column_schemas, max_size=4))},
)
schemas = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {}, optional={"fields": st.one_of(json_values, st.lists(image_schemas, max_size=3))}
    ),
)
documents = st.one_of(
    json_values,
    envelopes,
    st.fixed_dictionaries({"schema": schemas, "payload": st.one_of(envelopes, json_values)}),
)


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, allow_nan=True).encode()


def _depth(n: int, open_: str = "[", close: str = "]") -> bytes:
    return (open_ * n + close * n).encode()


values = st.one_of(
    documents.map(_dumps),
    st.binary(max_size=64),
    st.binary(max_size=64).map(lambda b: b"\x00" + b),
    st.integers(min_value=0, max_value=200_000).map(_depth),
    st.integers(min_value=0, max_value=5_000).map(lambda n: _depth(n, '{"a":', "}")[: 6 * n]),
    st.sampled_from([b"1e999", b"[1e999]", b'{"op":"c","after":{},"source":{"ts_ms":1e999}}']),
    st.text(max_size=30).map(lambda t: t.encode("utf-16")),
)
topics = st.sampled_from(
    ["erp.public.customers", "__debezium-heartbeat.erp", "erp", "x.transaction"]
)


@given(value=values, topic=topics)
@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_value_decodes_or_fails_with_a_reason(value: bytes, topic: str) -> None:
    try:
        change = EnvelopeDecoder().decode(value, topic)
    except InterlockError as exc:
        reason = str(exc)
    else:
        assert change is None or isinstance(change, RESULTS)
        return
    assert reason  # a reason the dead letter can carry


@pytest.mark.parametrize(
    "value",
    [
        b"[" * 3000 + b"]" * 3000,
        b'{"op":"c","after":' * 2000 + b"{}" + b"}" * 2000,
        b'{"op":"c","after":{"id":1},"source":[1,2]}',
        b'{"op":"c","after":{"id":1},"source":"erp"}',
        b'{"op":"c","after":{"id":1},"transaction":[1]}',
        b'{"op":"c","after":{"id":1},"source":{"ts_ms":1e999}}',
        b'{"op":"c","after":{"id":1},"source":{"lsn":NaN}}',
    ],
)
def test_known_hostile_values_fail_with_a_decode_error_or_decode(value: bytes) -> None:
    try:
        change = EnvelopeDecoder().decode(value, "erp.public.customers")
    except InterlockError:
        return
    assert change is None or isinstance(change, RESULTS)
    if change is not None and hasattr(change, "ts_ms") and change.ts_ms is not None:
        assert not math.isinf(change.ts_ms)
