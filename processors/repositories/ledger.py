"""The parity ledger of reconciliation (``processors.reconcile``), by the entry it keeps.

On disk: ``q:<quote id>`` → a quote's entry, ``n:<ERP order number>`` → an ERP order no quote
claims yet (an orphan), ``d:<deal id>`` → the quote id of a CRM deal. The prefixes are the
table's layout in its store and changelog (a running deployment's state): only this module
knows them.

On ``rocksdb://`` the table's store keeps a time index of the entries by the due time each
holds (``processors.domain.housekeeping.DUE_AT``; see :mod:`processors.rocksstore`), read by
:meth:`Ledger.due`; on ``memory://`` there is none (:attr:`Ledger.indexed`), and the entries are
walked.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from processors.domain.housekeeping import due_at
from processors.rocksstore import index_ms
from processors.state import partition_items, read_any_partition

__all__ = ["DueEntry", "Ledger", "LedgerEntry", "LedgerKey"]

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


@dataclass(frozen=True, slots=True)
class DueEntry:
    """An entry of the ledger's time index: the entry under ``key`` was due at ``due_ms``
    (milliseconds) when it was written (None: a key that is no ledger entry)."""

    index_entry: bytes
    due_ms: int
    key: LedgerKey | None

    def holds(self, entry: LedgerEntry | None) -> bool:
        """Whether ``entry`` (as stored now under ``key``) is still due at this time: not
        removed, nor written again with another due time (that wrote its own index entry)."""
        at = due_at(entry)
        return at is not None and index_ms(at) == self.due_ms


class Ledger:
    """The ``ledger`` table: entries by :class:`LedgerKey`, and the quote of each CRM deal."""

    def __init__(self, table: Any) -> None:
        self._table = table

    @property
    def _store(self) -> Any:
        """The table's store (a Faust table's, made on first use; a plain mapping has none)."""
        return getattr(self._table, "data", None)

    @property
    def indexed(self) -> bool:
        """Whether the table's store keeps a time index of the entries' due times
        (``rocksdb://``); otherwise the entries due are found by :meth:`entries`."""
        return getattr(self._store, "marked_at", None) is not None

    def due(self, partition: int, now: float, limit: int) -> list[DueEntry]:
        """The time index entries of ``partition`` due at ``now``, oldest first, at most
        ``limit`` (only when :attr:`indexed`). Some may no longer hold (:meth:`DueEntry.holds`);
        each stays until :meth:`forget_due`."""
        out = []
        for index_entry, due_ms, stored in self._store.due(partition, now, limit):
            kind = _KIND.get(str(stored)[:2])
            key = None if kind is None else LedgerKey(kind, str(stored)[2:])
            out.append(DueEntry(index_entry, due_ms, key))
        return out

    def forget_due(self, partition: int, entries: Iterable[DueEntry]) -> None:
        """Remove ``entries`` from ``partition``'s time index (their ledger entries stay)."""
        self._store.forget(partition, [due.index_entry for due in entries])

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
