"""The tables of accounts: their merged state, and what names them in either system."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from processors.state import put_if_changed, read_any_partition

__all__ = ["AccountState", "Accounts", "Identity"]

AccountState = dict[str, Any]
"""An account's merged state (``processors.domain.accounts.merge_account``), with its match
evidence and link."""


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
    canonical account id (the cross-reference); ``<side>|<match key>`` → the account of that
    side with that tax id, normalised name or web domain (the match index)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def index(
        self,
        account_id: str,
        *,
        crm_record_id: str | None,
        erp_customer_number: str | None,
        side: str,
        match_keys: Iterable[str],
    ) -> None:
        """Record what names ``account_id``, and the match keys it can be found by.

        Every change of an account repeats it: what is already kept is not written again."""
        keys = [f"{side}|{key}" for key in match_keys]
        if crm_record_id:
            keys.append(f"crm:{crm_record_id}")
        if erp_customer_number:
            keys.append(f"erp:{erp_customer_number}")
        for key in keys:
            put_if_changed(self._table, key, account_id)

    def accounts_matching(self, side: str, match_keys: Iterable[str]) -> set[str]:
        """The accounts of ``side`` found by any of ``match_keys``, from any partition this
        worker holds (the other side's accounts have other canonical ids)."""
        found = (read_any_partition(self._table, f"{side}|{key}") for key in match_keys)
        return {str(account_id) for account_id in found if account_id is not None}
