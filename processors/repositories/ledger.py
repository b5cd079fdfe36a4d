"""The parity ledger of reconciliation (``processors.reconcile``), by the entry it keeps.

On disk: ``q:<quote id>`` → a quote's entry, ``n:<ERP order number>`` → an ERP order no quote
claims yet (an orphan), ``d:<deal id>`` → the quote id of a CRM deal. The prefixes are the
table's layout in its store and changelog (a running deployment's state): only this module
knows them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from processors.state import partition_items, read_any_partition

__all__ = ["Ledger", "LedgerEntry", "LedgerKey"]

LedgerEntry = dict[str, Any]
"""What the CRM promised, the ERP did and the CRM was told, with the open findings
(``processors.domain.reconcile``)."""

EntryKind = Literal["quote", "orphan"]

_PREFIX: dict[EntryKind, str] = {"quote": "q:", "orphan": "n:"}
_KIND: dict[str, EntryKind] = {prefix: kind for kind, prefix in _PREFIX.items()}
_DEAL = "d:"


@dataclass(frozen=True, slots=True)
class LedgerKey:
    """Which entry: a quote's (by quote id) or an orphan's (by ERP order number)."""

    kind: EntryKind
    id: str

    @classmethod
    def quote(cls, quote_id: str) -> LedgerKey:
        return cls("quote", quote_id)

    @classmethod
    def orphan(cls, number: str) -> LedgerKey:
        return cls("orphan", number)

    @property
    def stored(self) -> str:
        """The key in the table and its changelog."""
        return _PREFIX[self.kind] + self.id


class Ledger:
    """The ``ledger`` table: entries by :class:`LedgerKey`, and the quote of each CRM deal."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, key: LedgerKey, *, anywhere: bool = False) -> LedgerEntry | None:
        """The entry, from the current event's partition (``anywhere``: from any this worker
        holds; an orphan is kept where its ERP change arrived)."""
        if anywhere:
            return read_any_partition(self._table, key.stored)
        return self._table.get(key.stored)

    def put(self, key: LedgerKey, entry: LedgerEntry) -> None:
        self._table[key.stored] = entry

    def remove(self, key: LedgerKey) -> None:
        del self._table[key.stored]

    def entries(self, partition: int) -> Iterator[tuple[LedgerKey, LedgerEntry]]:
        """The entries kept for ``partition``, read one at a time (not the ledger as a list:
        the worker's memory would grow with it even on ``rocksdb://``); on ``rocksdb://`` only
        that partition's database is read (:func:`processors.state.partition_items`). Writing
        an existing entry while iterating is safe on both stores; remove entries after the
        walk."""
        for stored, entry in partition_items(self._table, partition):
            kind = _KIND.get(stored[:2])
            if kind is None or not isinstance(entry, dict):
                continue
            if entry.get("partition") == partition:
                yield LedgerKey(kind, stored[2:]), entry

    def quote_of_deal(self, deal_id: str) -> str | None:
        """The quote whose order a CRM deal shows, once its order command was read back."""
        quote_id = self._table.get(_DEAL + deal_id)
        return None if quote_id is None else str(quote_id)

    def index_deal(self, deal_id: str, quote_id: str) -> None:
        self._table[_DEAL + deal_id] = quote_id

    def forget_deal(self, deal_id: str, quote_id: str | None) -> None:
        """Forget the deal's quote, if it is still ``quote_id`` (another may have claimed it)."""
        key = _DEAL + deal_id
        if self._table.get(key) == quote_id:
            del self._table[key]
