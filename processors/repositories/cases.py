"""The exception desk's cases (``processors.review``): each case id → the case as JSON, the
partition that keeps it and, for a quote's case, the quote's original record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts.review import Case
from processors.state import partition_items, read_any_partition

__all__ = ["Cases"]


class Cases:
    """The ``cases`` table: ``<case id>`` → ``{"case": …, "partition": p, "quote": …}``."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, case_id: str) -> Case | None:
        """The case, from any partition this worker holds (a match case may be kept in the
        other side's)."""
        entry = read_any_partition(self._table, case_id)
        return Case.model_validate(entry["case"]) if entry else None

    def held_quote(self, case_id: str) -> dict[str, Any] | None:
        """The original record (``processors.rawjson``) of the quote the case holds back."""
        entry = self._table.get(case_id) or {}
        return entry.get("quote")

    def put(self, case: Case, partition: int, quote: Mapping[str, Any] | None = None) -> None:
        """Keep ``case`` in ``partition``; ``quote``: the record it holds (else kept as is)."""
        entry = dict(self._table.get(case.case_id) or {})
        entry.update(case=case.model_dump(mode="json"), partition=partition)
        if quote is not None:
            entry["quote"] = dict(quote)
        self._table[case.case_id] = entry

    def open_in(self, partition: int) -> dict[str, Case]:
        """The open cases kept in ``partition``, by case id (a walk of the partition's cases,
        :func:`processors.state.partition_items`)."""
        held: dict[str, Case] = {}
        for key, entry in list(partition_items(self._table, partition)):
            if isinstance(entry, dict) and entry.get("partition") == partition:
                case = Case.model_validate(entry["case"])
                if case.is_open:
                    held[str(key)] = case
        return held
