"""The processors' tables (Faust, changelogged, str keys) and the in-flight commands in memory.

Every table is co-partitioned with the canonical topics: a key is written while handling an
event of partition p, so it lives in changelog partition p beside that account's events.

=====================  =======================================================================
``accounts``           canonical account id → merged account state
``identity``           ``crm:<id>`` / ``erp:<number>`` → canonical account id (cross-reference);
                       ``<side>|tax:`` / ``|name:`` / ``|domain:`` → account id (match index)
``seen``               event id → ``[seen_at, partition]`` (TTL-bounded)
``orders``             quote id → order state (revision ordered, requested/cancelled, deal id);
                       written only from commands read back from their topics
``parked``             ``q:<quote id>`` → the parked quote (original bytes), ``a:<account id>``
                       → quote ids parked for that account
``correlation``        ``o:<order id>`` / ``n:<ERP order number>`` → quote id,
                       ``q:<quote id>`` → ERP order number
``writebacks``         CRM deal id → the deal fields we last wrote (to recognise echoes)
=====================  =======================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import faust

__all__ = ["InFlight", "Tables", "make_tables"]


@dataclass
class Tables:
    """The Faust tables of one worker."""

    accounts: Any
    identity: Any
    seen: Any
    orders: Any
    parked: Any
    correlation: Any
    writebacks: Any


def make_tables(app: faust.App, partitions: int) -> Tables:
    """Declare every table on ``app`` with str keys and JSON values."""

    def table(name: str, help_: str) -> Any:
        return app.Table(
            name,
            key_type=str,
            partitions=partitions,
            help=help_,
        )

    return Tables(
        accounts=table("accounts", "Merged canonical account state."),
        identity=table("identity", "Cross-reference and match index to canonical account ids."),
        seen=table("seen", "Event ids already acted on (TTL-bounded)."),
        orders=table("orders", "Order state per quote, from durable order commands."),
        parked=table("parked", "Quotes waiting for their account."),
        correlation=table("correlation", "Order ↔ quote correlation for write-back."),
        writebacks=table("writebacks", "Deal fields last written to the CRM."),
    )


@dataclass
class InFlight:
    """Commands produced but not yet read back from their topic (lost on restart, by design).

    Between producing a command and reading it back, these stop a second command for the same
    cause. After a crash they are gone, and what was not yet durable is produced again with the
    same deterministic id: a duplicate the sinks drop by Idempotency-Key, never a loss.
    """

    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    causes: set[str] = field(default_factory=set)

    def clear(self) -> None:
        self.orders.clear()
        self.causes.clear()
