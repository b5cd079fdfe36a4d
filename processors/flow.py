"""What a flow (linking, quote → order, review, reconciliation) may use of the pipeline: its
config and its output plumbing, not its state.

``Pipeline`` implements :class:`FlowContext`; the flows in :mod:`processors.linking`,
:mod:`processors.quoteflow`, :mod:`processors.review` and :mod:`processors.reconcile` are typed
against it, so they neither import the pipeline nor reach each other through it (what one flow
needs of another is handed to it as a callable). The tables a flow reads and writes are handed
to its constructor as repositories (:mod:`processors.repositories`), so its signature says
which state it touches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from contracts.errors import InterlockError
from contracts.models import Envelope, OrderEvent
from contracts.ownership import OwnershipPolicy, OwnershipViolation
from contracts.policy import CommercialPolicy
from interlock.instruments import Instruments
from interlock.records import RawRecord
from processors.audit import Decision
from processors.state import InFlight
from processors.topic_names import ProcessorTopics

__all__ = ["Emit", "FlowContext", "InPartition", "PipelineConfig", "no_partitions", "one_partition"]


class Emit(Protocol):
    """Queue one output record (never awaited per event; flushed before offsets commit)."""

    def __call__(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None: ...


InPartition = Callable[[int], AbstractContextManager[None]]
"""Run a block as if handling an event of partition ``p``: its table reads and writes (and their
changelog records) go to that partition. The Faust worker switches its current event; a plain
mapping has no partitions, so elsewhere it does nothing."""


@contextmanager
def no_partitions(partition: int) -> Iterator[None]:
    """:data:`InPartition` where tables have no partitions (plain mappings)."""
    yield


def one_partition(_key: bytes) -> int:
    """Where every key goes when the co-partitioned topics have one partition."""
    return 0


@dataclass(frozen=True)
class PipelineConfig:
    """What the handlers need from the settings."""

    topics: ProcessorTopics
    policy: OwnershipPolicy
    join_grace_s: float
    dedup_ttl_s: float
    match_threshold: float
    origin: str = "interlock"
    reconcile_order_sla_s: float = 600.0
    reconcile_writeback_sla_s: float = 600.0
    reconcile_interval_s: float = 60.0
    commercial: CommercialPolicy | None = None
    """The commercial policy, routing and SLAs of the exception desk (None: no cases)."""
    partition_of: Callable[[bytes], int] = one_partition
    """The partition of the co-partitioned topics a record with this key goes to: the match
    index handles a match key of the account's own partition at once, without the exchange."""


class FlowContext(Protocol):
    """The settings and output plumbing a flow works with; its tables are handed to it apart."""

    config: PipelineConfig
    topics: ProcessorTopics
    inflight: InFlight
    metrics: Instruments
    clock: Callable[[], float]
    decode: Callable[[bytes], Envelope]
    emit: Emit
    in_partition: Callable[[int], AbstractContextManager[None]]
    """Run a block in another partition's tables (:data:`InPartition`)."""

    def audit(self, decision: Decision, event: Envelope | None, **kwargs: Any) -> None: ...

    def send_event(
        self,
        topic: str,
        event: Envelope,
        key: str,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None: ...

    def send_command(
        self, kind: str, command: OrderEvent, headers: list[tuple[str, bytes]] | None = None
    ) -> None: ...

    def dead_letter(
        self,
        raw: RawRecord,
        error: InterlockError,
        event: Envelope | None,
        *,
        durable: bool = False,
        **audit: Any,
    ) -> None: ...

    def count(self, topic: str, outcome: str) -> None: ...

    def is_seen(self, event_id: str) -> bool: ...

    def mark_seen(self, event_id: str, partition: int) -> None: ...

    def duplicate(self, event: Envelope, raw: RawRecord, stage: str, why: str) -> None: ...

    def violations(self, event: Envelope, found: list[OwnershipViolation]) -> None: ...
