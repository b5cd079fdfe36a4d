"""Deterministic event ids are uuid5 over the length-prefixed parts, in every form."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.ids import (
    EVENT_ID_NAMESPACE,
    cached_event_id,
    deterministic_event_id,
    event_id_after,
)

pytestmark = pytest.mark.unit


def reference(*parts: str) -> str:
    """The definition, through the standard library."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, "".join(f"{len(p)}:{p}" for p in parts)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(), min_size=1, max_size=6))
def test_event_ids_are_uuid5_of_the_length_prefixed_parts(parts: list[str]) -> None:
    expected = reference(*parts)
    assert deterministic_event_id(*parts) == expected
    assert cached_event_id(*parts) == expected
    assert uuid.UUID(expected).version == 5


@settings(max_examples=200, deadline=None)
@given(head=st.lists(st.text(), max_size=4), rest=st.lists(st.text(), min_size=1, max_size=3))
def test_an_id_after_a_prehashed_head_equals_the_whole_id(head: list[str], rest: list[str]) -> None:
    assert event_id_after(*head)(*rest) == reference(*head, *rest)


def test_known_ids_do_not_change() -> None:
    # Ids are stored in topics and tables: a change of scheme would double every order.
    assert deterministic_event_id("order", "q-1") == "a985fb3e-b560-5d01-9782-90b51b017818"
    assert deterministic_event_id("a:b", "c") != deterministic_event_id("a", "b:c")


def test_an_id_needs_a_part() -> None:
    with pytest.raises(ValueError, match="at least one part"):
        deterministic_event_id()
