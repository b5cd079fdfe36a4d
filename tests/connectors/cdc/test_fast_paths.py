"""The CDC hot path's shortcuts give exactly what the reference implementations give."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.cdc import CdcMapper, load_mapping_dir
from connectors.cdc.eventids import cached_event_id, fast_event_id
from contracts.ids import deterministic_event_id

pytestmark = pytest.mark.unit

MAPPER = CdcMapper(load_mapping_dir())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(), min_size=1, max_size=6))
def test_fast_event_ids_equal_deterministic_event_id(parts: list[str]) -> None:
    expected = deterministic_event_id(*parts)
    assert fast_event_id(*parts) == expected
    assert cached_event_id(*parts) == expected


def test_fast_event_id_needs_a_part_like_the_reference() -> None:
    with pytest.raises(ValueError, match="at least one part"):
        fast_event_id()


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

    assert outcome(mapping._payload) == outcome(mapping._payload_slow)
