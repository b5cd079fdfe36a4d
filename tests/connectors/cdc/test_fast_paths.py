"""The CDC hot path's shortcuts give exactly what the reference implementations give.

The fast writers must produce the very bytes of the reference path (mapping -> event model ->
``contracts.encode``) for every shipped mapping, and refuse exactly the changes it refuses.
"""

from __future__ import annotations

import io
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastavro import schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.cdc import CdcMapper, ChangeEvent, load_mapping_dir
from connectors.cdc.envelope import _new_change
from connectors.cdc.eventids import cdc_event_id
from connectors.cdc.fastpath import FastWriter
from connectors.cdc.mapper import MappingPlan
from contracts.conversion import to_avro
from contracts.ids import deterministic_event_id
from contracts.serde import SINGLE_OBJECT_MAGIC, encode, make_serializer

pytestmark = pytest.mark.unit

MAPPER = CdcMapper(load_mapping_dir())


COLUMNS = sorted(
    {c for m in MAPPER.mappings for f in m.spec.fields.values() for c in f.source_columns()}
)
CELL = st.one_of(
    st.none(), st.text(max_size=8), st.integers(-(10**6), 10**6), st.booleans(),
    st.sampled_from(["2024-05-01T10:00:00Z", "2024-05-01", "N30", "OPEN", "1", "true"]),
)  # fmt: skip


@pytest.mark.parametrize(
    "index", range(len(MAPPER.mappings)), ids=lambda i: MAPPER.mappings[i].name
)
@settings(max_examples=80, deadline=None)
@given(row=st.fixed_dictionaries({}, optional=dict.fromkeys(COLUMNS, CELL)))
def test_generated_payload_builder_equals_the_field_closures(
    index: int, row: dict[str, Any]
) -> None:
    mapping = MAPPER.mappings[index]

    def outcome(build: Any) -> Any:
        try:
            return build(row)
        except Exception as exc:  # the same failure is part of the equivalence
            return type(exc), str(exc)

    assert outcome(mapping.payload_builder) == outcome(
        lambda row: _payload_by_field_plans(mapping.plan, row)
    )


def _payload_by_field_plans(plan: MappingPlan, row: dict[str, Any]) -> dict[str, Any]:
    """The payload by calling every field's ``FieldPlan.run``: what the builder must compute."""
    payload = plan.payload_template.copy()
    for name, field in plan.fields:
        payload[name] = field.run(row)
    for nested in plan.nested:
        part = nested.template.copy()
        filled = False
        for sub, field in nested.fields:
            value = field.run(row)
            if value is not None:
                part[sub] = value
                filled = True
        if nested.many:
            payload[nested.head] = [part] if filled else []
        else:
            payload[nested.head] = part if filled else None
    return payload


def test_cdc_event_id_equals_the_generic_id() -> None:
    for parts in [("public.customers", "C-1", "lsn:42", "c"), ("é.x", "a:b", "ts:1:tx:None", "u")]:
        assert cdc_event_id(*parts) == deterministic_event_id("cdc", *parts)


WRITERS = [FastWriter.build(m, make_serializer(m.entity)) for m in MAPPER.mappings]
NOW = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
CHANGES = st.fixed_dictionaries(
    {
        "op": st.sampled_from(["c", "u", "d", "r"]),
        "ts_ms": st.one_of(st.none(), st.integers(0, 4_102_444_800_000)),
        "lsn": st.one_of(st.none(), st.integers(0, 2**40)),
        "tx_id": st.one_of(st.none(), st.integers(0, 2**31)),
        "db": st.one_of(st.none(), st.sampled_from(["erp", "büro"])),
        "schema": st.one_of(st.none(), st.just("public")),
        "transaction_id": st.one_of(st.none(), st.text(max_size=6)),
    }
)


def _rows(index: int) -> st.SearchStrategy[dict[str, Any]]:
    """Rows whose key columns are mostly present (so most changes map) and the rest random."""
    mapping = MAPPER.mappings[index]
    keys = {c for n in mapping.plan.required for c in mapping.spec.fields[n].source_columns()}
    keys |= set(mapping.spec.record_id)
    key_cell = st.one_of(st.text(min_size=1, max_size=8), st.integers(0, 10**6))
    return st.fixed_dictionaries(
        {c: key_cell for c in sorted(keys)},
        optional={c: CELL for c in COLUMNS if c not in keys},
    )


def test_every_shipped_mapping_has_a_fast_writer() -> None:
    assert all(w is not None for w in WRITERS)


@pytest.mark.parametrize(
    "index", range(len(MAPPER.mappings)), ids=lambda i: MAPPER.mappings[i].name
)
@settings(max_examples=150, deadline=None)
@given(data=st.data(), meta=CHANGES)
def test_fast_writer_bytes_equal_model_then_encode(
    index: int, data: st.DataObject, meta: dict[str, Any]
) -> None:
    row = data.draw(_rows(index))
    before = data.draw(st.one_of(st.none(), _rows(index), st.just(row)))
    mapping, writer = MAPPER.mappings[index], WRITERS[index]
    assert writer is not None
    op = meta["op"]
    change = ChangeEvent(
        before=row if op == "d" else before,
        after=None if op == "d" else row,
        table=mapping.spec.table,
        **meta,
    )
    try:
        mapped = mapping.map(change, NOW)
        expected: Any = (mapped.key, encode(mapped.event))
    except Exception:  # the writer must refuse too: the reference path then decides
        expected = None
    writer.learn(SINGLE_OBJECT_MAGIC + make_serializer(mapping.entity).contract.fingerprint, 10)
    try:
        got: Any = writer(change, NOW)
    except Exception:
        got = None
    assert got == expected
    OUTCOMES[mapping.name].append(expected is not None)


OUTCOMES: dict[str, list[bool]] = {m.name: [] for m in MAPPER.mappings}


def test_the_equivalence_examples_mostly_map() -> None:
    """Guards the test above against comparing only refusals (runs after it, same module)."""
    for name, outcomes in OUTCOMES.items():
        if outcomes:  # empty when run alone with -k
            assert sum(outcomes) >= len(outcomes) // 4, name


def test_change_events_built_slot_by_slot_equal_the_dataclass() -> None:
    values = ("u", {"a": 1}, {"a": 2}, "t", "public", "erp", 1, 2, 3, True, "tx", 4, "p", "x",
              frozenset({"b"}))  # fmt: skip
    built = _new_change(*values)
    assert built == ChangeEvent(*values)
    assert repr(built) == repr(ChangeEvent(*values))
    with pytest.raises(FrozenInstanceError):
        built.op = "c"  # type: ignore[misc]


def _customer_change(**columns: Any) -> ChangeEvent:
    row = {"customer_number": "C-1", "name": "Acme", **columns}
    return ChangeEvent(op="c", before=None, after=row, table="customers", lsn=7, ts_ms=1)


def _writer(name: str) -> FastWriter:
    index = next(i for i, m in enumerate(MAPPER.mappings) if m.name == name)
    writer = WRITERS[index]
    assert writer is not None
    writer.learn(
        SINGLE_OBJECT_MAGIC + make_serializer(writer.mapping.entity).contract.fingerprint, 10
    )
    return writer


@pytest.mark.parametrize(
    "minor",
    [0, 1, -1, 99, -128, 10**18 - 1, -(10**18) + 1, 10**18, -(10**18), 10**30, True, "42",
     "-7", "4.5", 12.9, float("inf"), Decimal("12.5"), "NaN", [], 2**64],
)  # fmt: skip
def test_minor_units_written_as_decimal_bytes_match_or_defer_to_the_reference(minor: Any) -> None:
    """Around the schema's precision (18 digits) and for odd column values."""
    writer = _writer("erp-customers")
    change = _customer_change(credit_limit_minor=minor)
    try:
        mapped = writer.mapping.map(change, NOW)
        expected: Any = (mapped.key, encode(mapped.event))
    except Exception:
        expected = None
    try:
        got: Any = writer(change, NOW)
    except Exception:
        got = None
    assert got in (expected, None)  # refusing is always allowed: the reference path decides
    if isinstance(minor, int) and abs(minor) < 10**18:
        assert got == expected is not None


@pytest.mark.parametrize("size", [0, 1, 63, 64, 127, 128, 255, 256, 8191, 8192, 20_000])
def test_long_and_short_texts_are_encoded_as_fastavro_encodes_them(size: int) -> None:
    """The sizes around each varint length, through the writer and the generated codec."""
    writer = _writer("erp-customers")
    change = _customer_change(name="n" * size, legal_name="é" * size, billing_city="b" * size)
    mapped = writer.mapping.map(change, NOW)
    contract = make_serializer("account").contract
    out = io.BytesIO()
    schemaless_writer(out, contract.parsed, to_avro(mapped.event))
    assert writer(change, NOW) == (mapped.key, encode(mapped.event))
    assert encode(mapped.event)[10:] == out.getvalue()
