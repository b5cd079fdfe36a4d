"""The tables of accounts: their merged state, and what names them in either system."""

from __future__ import annotations

from typing import Any

from processors.state import put_if_changed, read_any_partition

__all__ = ["MATCH_KEY_LIMIT", "AccountState", "Accounts", "Identity", "MatchEntry"]

AccountState = dict[str, Any]
"""An account's merged state (``processors.domain.accounts.merge_account``), with its match
evidence and link."""

MATCH_KEY_LIMIT = 64
"""The most accounts one match key keeps. A name or domain shared by more companies than this
identifies none of them, and its entry (rewritten whole at every change) would only grow."""

MatchEntry = dict[str, Any]
"""An account as the match index keeps it: ``{"side": "crm" | "erp", "account": snapshot}``."""


class Accounts:
    """The ``accounts`` table: canonical account id → the account's merged state."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, account_id: str, *, anywhere: bool = False) -> AccountState | None:
        """The account's state, from the current event's partition (``anywhere``: from any this
        worker holds, as for the other side of a link, which has another canonical id)."""
        if anywhere:
            return read_any_partition(self._table, account_id)
        return self._table.get(account_id)

    def put(self, account_id: str, state: AccountState) -> None:
        self._table[account_id] = state


class Identity:
    """The ``identity`` table: ``crm:<CRM record id>`` and ``erp:<ERP customer number>`` →
    canonical account id (the cross-reference); ``m|<match key>`` → the accounts of either side
    found by that tax id, normalised name or web domain (the match index, kept in the partition
    of its match key: ``processors.linking``)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def index(
        self, account_id: str, *, crm_record_id: str | None, erp_customer_number: str | None
    ) -> None:
        """Record what names ``account_id`` in either system.

        Every change of an account repeats it: what is already kept is not written again."""
        if crm_record_id:
            put_if_changed(self._table, f"crm:{crm_record_id}", account_id)
        if erp_customer_number:
            put_if_changed(self._table, f"erp:{erp_customer_number}", account_id)

    def matching(self, match_key: str) -> dict[str, MatchEntry]:
        """The accounts found by ``match_key`` (account id → its side and snapshot), from the
        current event's partition: the match key's own."""
        found = self._table.get(f"m|{match_key}")
        return dict(found) if found else {}

    def keep_match(self, match_key: str, account_id: str, entry: MatchEntry) -> bool:
        """Keep ``account_id``'s side and snapshot under ``match_key`` (unless already kept);
        False when the key already keeps ``MATCH_KEY_LIMIT`` other accounts (not kept)."""
        found = self.matching(match_key)
        if account_id not in found and len(found) >= MATCH_KEY_LIMIT:
            return False
        if found.get(account_id) != entry:
            found[account_id] = entry
            self._table[f"m|{match_key}"] = found
        return True

    def drop_match(self, match_key: str, account_id: str) -> None:
        """``account_id`` is no longer found by ``match_key`` (its name, tax id or domain
        changed)."""
        found = self.matching(match_key)
        if found.pop(account_id, None) is None:
            return
        if found:
            self._table[f"m|{match_key}"] = found
        else:
            del self._table[f"m|{match_key}"]
