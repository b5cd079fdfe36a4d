"""The tables of marks that expire: ids already acted on, and what each deal was last told.

Both are forgotten after ``dedup_ttl_s`` by :mod:`processors.expiry`, which finds a mark by the
time it holds (on ``rocksdb://`` through the time index the table's store keeps).
"""

from __future__ import annotations

from typing import Any

from processors.domain.writeback import WRITTEN_AT, WRITTEN_IN

__all__ = ["SeenEvents", "WrittenDeal", "WrittenDeals"]

WrittenDeal = dict[str, Any]
"""The deal fields our durable update-deal commands left (``fold_written``); as stored, also
when the last became durable (``WRITTEN_AT``) and in which partition (``WRITTEN_IN``)."""


class SeenEvents:
    """The ``seen`` table: an event id (or a decision id, or a command's cause) →
    ``[seen at, partition]``."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def seen_at(self, event_id: str) -> float | None:
        """When ``event_id`` was marked, if it still is."""
        seen = self._table.get(event_id)
        return None if seen is None else float(seen[0])

    def mark(self, event_id: str, partition: int, at: float) -> None:
        """``event_id`` was acted on at ``at``, in ``partition`` (where its sweep forgets it)."""
        self._table[event_id] = [at, partition]


class WrittenDeals:
    """The ``writebacks`` table: CRM deal id → the deal fields we last wrote (to recognise their
    echoes and skip writes that add nothing)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, deal_id: str) -> WrittenDeal | None:
        return self._table.get(deal_id)

    def put(self, deal_id: str, shown: WrittenDeal, *, at: float, partition: int) -> None:
        """The deal shows ``shown`` since a command read back at ``at`` in ``partition``."""
        self._table[deal_id] = {**shown, WRITTEN_AT: at, WRITTEN_IN: partition}
