"""The CDC event id, with its constant head pre-hashed (see ``contracts.ids``)."""

from __future__ import annotations

from contracts.ids import hashed_parts, uuid5_text

__all__ = ["cdc_event_id"]

_CDC = hashed_parts("cdc")


def cdc_event_id(qualified: str, record_id: str, position: str, op: str) -> str:
    """``deterministic_event_id("cdc", qualified, record_id, position, op)``, runs per change."""
    h = _CDC.copy()
    h.update(
        f"{len(qualified)}:{qualified}{len(record_id)}:{record_id}"
        f"{len(position)}:{position}{len(op)}:{op}".encode()
    )
    return uuid5_text(h)
