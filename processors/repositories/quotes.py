"""The tables of a quote's way to an order: its order state, its lines, where it is parked,
and how the ERP's order numbers lead back to it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypedDict

from interlock.records import RawRecord
from processors.rawjson import raw_from_json
from processors.state import put_if_changed, read_any_partition

__all__ = [
    "Correlation",
    "HeldCommand",
    "OrderState",
    "Orders",
    "ParkedQuote",
    "ParkingLot",
    "QuoteLines",
]

OrderState = dict[str, Any]
"""A quote's order state (``processors.domain.quotes.fold_order_state``), with its partition."""

HeldCommand = tuple[str, dict[str, Any]]
"""An amend or cancel waiting for its ERP order number: the command kind and the command (JSON)."""


class Correlation:
    """The ``correlation`` table: which quote an ERP order belongs to, and what waits for it.

    ``o:<order id>`` and ``n:<ERP order number>`` → quote id; ``q:<quote id>`` → the ERP order
    number; ``h:<quote id>`` → a compensation held until that number is known.
    """

    def __init__(self, table: Any) -> None:
        self._table = table

    def quote_of(self, order_id: str | None, number: str | None) -> str | None:
        """The quote an ERP change belongs to, by its order id, else its ERP order number, from
        any partition this worker holds (the change arrives keyed by the ERP customer)."""
        found = read_any_partition(self._table, f"o:{order_id}") if order_id else None
        if found is None and number:
            found = read_any_partition(self._table, f"n:{number}")
        return None if found is None else str(found)

    def order_requested(self, order_id: str, quote_id: str) -> None:
        """The create-order of ``quote_id`` is durable: its order id now names the quote."""
        self._table[f"o:{order_id}"] = quote_id

    def numbered(self, quote_id: str, number: str) -> None:
        """The ERP gave the quote's order its number.

        Every later change of the order repeats it: what is already kept is not written again."""
        put_if_changed(self._table, f"n:{number}", quote_id)
        put_if_changed(self._table, f"q:{quote_id}", number)

    def number_of(self, quote_id: str) -> str | None:
        """The ERP order number of the quote's order, once the ERP has told it."""
        number = self._table.get(f"q:{quote_id}")
        return None if number is None else str(number)

    def hold(self, quote_id: str, kind: str, command: dict[str, Any]) -> None:
        """Keep an amend or cancel of ``quote_id`` until its ERP order number is known."""
        self._table[f"h:{quote_id}"] = {"kind": kind, "command": command}

    def take_held(self, quote_id: str) -> HeldCommand | None:
        """The compensation held for ``quote_id``, removed from the table; None if none is."""
        held = self._table.get(f"h:{quote_id}")
        if held is None:
            return None
        del self._table[f"h:{quote_id}"]
        return str(held["kind"]), held["command"]


class ParkedQuote(TypedDict):
    """A quote waiting for its account (or the account's link to an ERP customer)."""

    quote_id: str
    revision: int
    account_id: str
    partition: int
    """The partition the quote arrived on (its timers run there)."""
    parked_at: float
    """When it was first parked (a redelivery does not restart its grace)."""
    waiting_for: str
    """``account`` or ``link``."""
    raw: dict[str, Any]
    """The original record (``processors.rawjson``), dead-lettered as it came if it times out."""


class ParkingLot:
    """The ``parked`` table: ``q:<quote id>`` → the parked quote; ``a:<account id>`` → the
    ids of the quotes parked for that account, in the order they came."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, quote_id: str, *, anywhere: bool = False) -> ParkedQuote | None:
        """The parked quote, from the current event's partition (``anywhere``: from any this
        worker holds)."""
        key = f"q:{quote_id}"
        entry = read_any_partition(self._table, key) if anywhere else self._table.get(key)
        return entry

    def waiting_for_account(self, account_id: str, *, anywhere: bool = False) -> list[str]:
        """The ids of the quotes parked for ``account_id``."""
        key = f"a:{account_id}"
        ids = read_any_partition(self._table, key) if anywhere else self._table.get(key)
        return list(ids or [])

    def records_for_account(self, account_id: str) -> Iterator[RawRecord]:
        """The original records of the quotes parked for ``account_id``, in any partition this
        worker holds (entries without bytes are left out)."""
        for quote_id in self.waiting_for_account(account_id, anywhere=True):
            entry = self.get(quote_id, anywhere=True)
            if entry is not None and entry["raw"].get("value"):
                yield raw_from_json(entry["raw"])

    def put(self, entry: ParkedQuote) -> None:
        """Park (or park again) a quote, indexed by its account."""
        quote_id, account_id = entry["quote_id"], entry["account_id"]
        self._table[f"q:{quote_id}"] = entry
        waiting = self.waiting_for_account(account_id)
        if quote_id not in waiting:
            self._table[f"a:{account_id}"] = [*waiting, quote_id]

    def remove(self, quote_id: str, account_id: str) -> bool:
        """Forget a parked quote and its place in its account's index; False if it was not
        parked."""
        key = f"q:{quote_id}"
        if self._table.get(key) is None:
            return False
        del self._table[key]
        index_key = f"a:{account_id}"
        waiting = [q for q in self.waiting_for_account(account_id) if q != quote_id]
        if waiting:
            self._table[index_key] = waiting
        elif self._table.get(index_key) is not None:
            del self._table[index_key]
        return True

    def quotes(self) -> list[tuple[str, ParkedQuote]]:
        """Every parked quote the table's reads reach, by quote id."""
        return [(k[2:], v) for k, v in list(self._table.items()) if k.startswith("q:")]


class Orders:
    """The ``orders`` table: quote id → order state, written only from commands read back."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, quote_id: str, *, anywhere: bool = False) -> OrderState | None:
        """The quote's durable order state, from the current event's partition (``anywhere``:
        from any this worker holds: an ERP change arrives in another partition than its quote)."""
        if anywhere:
            return read_any_partition(self._table, quote_id)
        return self._table.get(quote_id)

    def put(self, quote_id: str, state: OrderState) -> None:
        self._table[quote_id] = state


class QuoteLines:
    """The ``lines`` table: quote id → its lines assembled from line events
    (``processors.domain.quotes.fold_lines``)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, quote_id: str) -> dict[str, Any] | None:
        return self._table.get(quote_id)

    def put(self, quote_id: str, lines: dict[str, Any]) -> None:
        self._table[quote_id] = lines
