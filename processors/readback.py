"""Read-back headers: what a command of ours folds into once durable, carried beside it.

The worker reads its own commands back from their topics (``Pipeline.on_command``) to fold
them into its tables. Decoding a whole Avro command for the few values that fold costs more
than the fold, so each command is produced with a JSON header holding those values:

- ``interlock.order-state`` on order commands (create, amend, cancel): the order state the
  command folds into, its cause and, with reconciliation, its promise;
- ``interlock.deal-write`` on update-deal commands: what the command writes to its deal
  (:class:`processors.domain.writeback.DealWrite`).

A command without its header (written by anything else, or before the header existed), or
with one that does not read as expected, is decoded instead: both give the same tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from contracts.models import OrderEvent
from processors.domain.quotes import order_state_of
from processors.domain.reconcile import promise_of
from processors.domain.writeback import DealWrite

__all__ = [
    "DEAL_WRITE_HEADER",
    "READBACK_HEADER",
    "deal_write_header",
    "deal_write_readback",
    "order_readback",
    "order_state_header",
]

READBACK_HEADER = "interlock.order-state"
"""Header of our order commands: the order state they fold into and their cause (JSON), so the
read-back of a durable command does not decode the whole command. Commands without it (written
by anything else) are decoded."""
DEAL_WRITE_HEADER = "interlock.deal-write"
"""Header of our update-deal commands: what the command writes to its deal (JSON)."""

Headers = Sequence[tuple[str, bytes | None]]
_TEXT_OR_NONE = (str, type(None))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

_STATE_KEYS = frozenset(
    ("quote_id", "order_id", "account_id", "revision", "status", "correlation_id", "deal_id",
     "event_id")
)  # fmt: skip


def order_state_header(command: OrderEvent, promise: bool) -> tuple[str, bytes]:
    """The ``interlock.order-state`` header of an order command (``promise``: with its
    promise, for the reconciliation ledger)."""
    readback = {"state": order_state_of(command), "cause": command.causation_id}
    if promise:
        readback["promise"] = promise_of(command)
    return READBACK_HEADER, orjson.dumps(readback)


def order_readback(headers: Headers) -> tuple[dict[str, Any], Any, dict[str, Any] | None] | None:
    """(order state, cause, promise) from a command's read-back header; None: decode it."""
    for name, value in headers:
        if name == READBACK_HEADER and value:
            try:
                data = orjson.loads(value)
                state = data["state"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                return None
            if not isinstance(state, dict) or not state.keys() >= _STATE_KEYS:
                return None
            promise = data.get("promise")
            return state, data.get("cause"), promise if isinstance(promise, dict) else None
    return None


def deal_write_header(write: DealWrite) -> tuple[str, bytes] | None:
    """The ``interlock.deal-write`` header of an update-deal command that writes ``write``
    (:func:`processors.domain.writeback.deal_write_of`), its time in microseconds since the
    epoch as its Avro record carries it; None for a time without a zone (it is decoded)."""
    at = write.at
    if at.tzinfo is None:
        return None
    data = [*write[:6], (at - _EPOCH) // _MICROSECOND, write.cause]
    return DEAL_WRITE_HEADER, orjson.dumps(data)


def deal_write_readback(headers: Headers) -> DealWrite | None:
    """What an update-deal command writes, from its header; None: decode it."""
    for name, value in headers:
        if name == DEAL_WRITE_HEADER and value:
            try:
                data = orjson.loads(value)
            except orjson.JSONDecodeError:
                return None
            if type(data) is not list or len(data) != 8:
                return None
            deal, quote, account, order, values, changed, at, cause = data
            if not (
                isinstance(deal, _TEXT_OR_NONE)
                and isinstance(quote, _TEXT_OR_NONE)
                and type(account) is str
                and type(order) is str
                and type(values) is dict
                and type(changed) is list
                and all(type(field) is str for field in changed)
                and type(at) is int
                and isinstance(cause, _TEXT_OR_NONE)
            ):
                return None
            try:
                written_at = _EPOCH + timedelta(microseconds=at)  # as the Avro decoder reads it
            except OverflowError:
                return None
            return DealWrite(deal, quote, account, order, values, tuple(changed), written_at, cause)
    return None
