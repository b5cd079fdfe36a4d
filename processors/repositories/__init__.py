"""Typed access to the worker's tables (``processors.state``), one repository per table.

A Faust table is a mapping of strings. Each repository names what its table keeps, types its
keys and values, and is the only place that knows the table's key layout: some tables keep
several kinds of entries told apart by a key prefix, and those prefixes are the table's layout
in its store and its changelog (a running deployment's state), so they stay as they are. The
flows are handed the repositories they use, never the tables.
"""

from processors.repositories.accounts import Accounts, AccountState, Identity
from processors.repositories.cases import Cases
from processors.repositories.ledger import Ledger, LedgerEntry, LedgerKey
from processors.repositories.marks import SeenEvents, WrittenDeal, WrittenDeals
from processors.repositories.quotes import (
    Correlation,
    HeldCommand,
    Orders,
    OrderState,
    ParkedQuote,
    ParkingLot,
    QuoteLines,
)

__all__ = [
    "AccountState",
    "Accounts",
    "Cases",
    "Correlation",
    "HeldCommand",
    "Identity",
    "Ledger",
    "LedgerEntry",
    "LedgerKey",
    "OrderState",
    "Orders",
    "ParkedQuote",
    "ParkingLot",
    "QuoteLines",
    "SeenEvents",
    "WrittenDeal",
    "WrittenDeals",
]
