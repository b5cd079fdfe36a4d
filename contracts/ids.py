"""Deterministic event ids, so a replayed or redelivered cause yields the same id downstream."""

from __future__ import annotations

import uuid

__all__ = ["EVENT_ID_NAMESPACE", "deterministic_event_id"]

EVENT_ID_NAMESPACE = uuid.UUID("41abe035-6248-5f04-9a40-d4f8f502ad1e")
"""Fixed uuid5 namespace of Interlock event ids; changing it changes every derived id."""


def deterministic_event_id(*parts: str) -> str:
    """A uuid5 over ``parts`` (e.g. source system, record id, change version).

    Parts are length-prefixed before hashing, so ``("a:b", "c")`` and ``("a", "b:c")`` differ.
    """
    if not parts:
        raise ValueError("deterministic_event_id needs at least one part")
    name = "".join(f"{len(p)}:{p}" for p in parts)
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, name))
