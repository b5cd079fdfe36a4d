"""The processors' event handling: decode, call the pure domain functions, update state, emit.

Transport-neutral: tables are mapping-like (Faust tables in the worker, dicts in the bench),
outputs go through an ``Emit`` callable and dead letters through a ``DeadLetter`` callable,
so the Faust agents stay thin and a plain confluent-kafka loop can run the very same logic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from contracts.errors import InterlockError, Reason, ValidationError
from contracts.models import (
    AccountEvent,
    Envelope,
    InvoiceEvent,
    OrderEvent,
    QuoteEvent,
    ShipmentEvent,
)
from contracts.ownership import OwnershipViolation
from interlock.instruments import Instruments
from interlock.records import RawRecord
from processors.audit import Decision, decision_record, encode_record
from processors.domain.quotes import fold_order_state, order_state_of
from processors.domain.reconcile import promise_of
from processors.domain.writeback import (
    DealWrite,
    deal_shows,
    deal_update,
    deal_write_of,
    echo_reason,
    fold_written,
)
from processors.expiry import Expiry, ExpiryWalk
from processors.flow import Emit, InPartition, PipelineConfig, no_partitions
from processors.linking import Linker
from processors.quoteflow import QuoteFlow
from processors.readback import (
    READBACK_HEADER,
    deal_write_header,
    deal_write_readback,
    order_readback,
    order_state_header,
)
from processors.reconcile import Reconciler
from processors.repositories import (
    Accounts,
    Cases,
    Correlation,
    Identity,
    Ledger,
    Orders,
    ParkingLot,
    QuoteLines,
    SeenEvents,
    WrittenDeals,
)
from processors.review import ReviewDesk
from processors.state import InFlight, Tables

__all__ = ["FORWARDED_HEADER", "READBACK_HEADER", "DeadLetter", "Emit", "Pipeline",
           "PipelineConfig"]  # fmt: skip

SERVICE = "processors"
FORWARDED_HEADER = "interlock.forwarded-from"
"""On ``link.erp-changes``: the canonical topic an ERP change was forwarded from."""


DeadLetter = Callable[[RawRecord, BaseException, bool], None]
"""Dead-letter a record; True: return once it is durable."""
Encode = Callable[[Envelope, str], bytes]


class Pipeline:
    """Handles one decoded record at a time against the tables; see ``processors.state``.

    It reads and writes the tables through their repositories, and hands each flow the ones it
    uses. ``expiry`` finds the expired marks of ``seen`` and ``writebacks``: the index of a
    ``rocksdb://`` store (``processors.expiry.ExpiryIndex``), else a walk of both tables.
    """

    def __init__(
        self,
        config: PipelineConfig,
        tables: Tables,
        *,
        decode: Callable[[bytes], Envelope],
        encode: Encode,
        emit: Emit,
        dead_letter: DeadLetter,
        instruments: Instruments,
        clock: Callable[[], float] = time.time,
        known_product: Callable[[str], bool] | None = None,
        expiry: Expiry | None = None,
        in_partition: InPartition = no_partitions,
    ) -> None:
        self.config = config
        self.in_partition = in_partition
        self.topics = config.topics
        self.tables = tables
        """The tables themselves: the expiry sweeps them whole (the flows get repositories)."""
        self.expiry: Expiry = expiry if expiry is not None else ExpiryWalk()
        self.seen = SeenEvents(tables.seen)
        self.written = WrittenDeals(tables.writebacks)
        self.orders = Orders(tables.orders)
        self.correlation = Correlation(tables.correlation)
        accounts = Accounts(tables.accounts)
        parked = ParkingLot(tables.parked)
        self.inflight = InFlight()
        self.decode = decode
        self.encode = encode
        self.emit = emit
        self.dead_letter_raw = dead_letter
        self.metrics = instruments
        self.clock = clock
        self._consumed = instruments.events_consumed
        self._counters: dict[tuple[str, str], Any] = {}
        self._counted = False
        self._child = instruments.child
        self._processing = instruments.processing_seconds.labels(SERVICE, "canonical")
        self.review = ReviewDesk(
            self,
            config.commercial,
            cases=None if tables.cases is None else Cases(tables.cases),
            accounts=accounts,
            parked=parked,
        )
        self.quotes = QuoteFlow(
            self,
            known_product,
            self.review,
            accounts=accounts,
            orders=self.orders,
            lines=QuoteLines(tables.lines),
            parked=parked,
            correlation=self.correlation,
        )
        self.linker = Linker(
            self,
            self.quotes.release_for_account,
            self.review,
            accounts=accounts,
            identity=Identity(tables.identity),
        )
        self.review.redo = self.quotes.decide_again
        self.review.link = self.linker.link_decided
        self.reconcile = Reconciler(self, None if tables.ledger is None else Ledger(tables.ledger))
        self._due: set[int] = set()
        """Partitions whose sweep stopped at its batch (the index): they go on at the next tick."""

    # -- plumbing shared by the flows ---------------------------------------------------------
    def count(self, topic: str, outcome: str) -> None:
        """Count a consumed record's outcome."""
        self._counted = True
        counter = self._counters.get((topic, outcome))
        if counter is None:
            counter = self._counters[(topic, outcome)] = self._consumed.labels(
                SERVICE, topic, outcome
            )
        counter.inc()

    def audit(self, decision: Decision, event: Envelope | None, **kwargs: Any) -> None:
        key, value = encode_record(decision_record(decision, event, at=self.clock(), **kwargs))
        self.emit(self.topics.audit, key, value)

    def send_event(
        self,
        topic: str,
        event: Envelope,
        key: str,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.emit(topic, key.encode(), self.encode(event, topic), headers)
        self._child(self.metrics.events_produced, SERVICE, topic).inc()

    def send_command(
        self,
        kind: str,
        command: OrderEvent,
        headers: list[tuple[str, bytes]] | None = None,
        *,
        write: DealWrite | None = None,
    ) -> None:
        """Produce a command and remember its cause until it is read back.

        ``headers`` travel with it (e.g. the override of a person's approval); ``write``: what
        an update-deal writes, if the caller has it already (``deal_write_of(command)``)."""
        topic = self.topics.command_topic(kind)
        headers = list(headers) if headers else None
        header = None
        if kind == "update-deal":
            write = deal_write_of(command) if write is None else write
            header = deal_write_header(write)
        elif command.payload.quote_id:
            header = order_state_header(command, self.reconcile.enabled)
        if header is not None:
            headers = [*(headers or []), header]
        self.send_event(topic, command, command.payload.account_id, headers)
        self._child(self.metrics.commands_emitted, topic).inc()
        if write is not None and write.deal_id:
            deal = write.deal_id
            self.inflight.writebacks[deal] = fold_written(self.last_written(deal), write)
        if command.causation_id:
            self.inflight.causes.add(command.causation_id)
        self.audit(
            "command_emitted",
            command,
            ids={"quote_id": command.payload.quote_id, "order_id": command.payload.order_id},
            details={"command": topic, "event_type": command.event_type},
        )

    def dead_letter(
        self,
        raw: RawRecord,
        error: InterlockError,
        event: Envelope | None,
        *,
        durable: bool = False,
        **audit: Any,
    ) -> None:
        """Dead-letter the original bytes, count it, audit it. A consumed record's offset is
        committed only once its dead letter is durable; ``durable``: wait for it now (a record
        no offset holds any more, such as a parked quote given up, before the state forgets it)."""
        self.dead_letter_raw(raw, error, durable)
        self.count(raw.topic, "dead_lettered")
        self.audit(
            "dead_lettered",
            event,
            details={"reason": str(error.reason), "message": str(error), "topic": raw.topic},
            **audit,
        )

    def is_seen(self, event_id: str) -> bool:
        if event_id in self.inflight.causes:
            return True
        seen_at = self.seen.seen_at(event_id)
        return seen_at is not None and self.clock() - seen_at < self.config.dedup_ttl_s

    def last_written(self, deal_id: str) -> dict[str, Any] | None:
        """What the deal shows once our commands land: the latest produced, else read back."""
        pending = self.inflight.writebacks.get(deal_id)
        return pending if pending is not None else self.written.get(deal_id)

    def mark_seen(self, event_id: str, partition: int) -> None:
        self.seen.mark(event_id, partition, self.clock())

    def duplicate(self, event: Envelope, raw: RawRecord, stage: str, why: str) -> None:
        self._child(self.metrics.duplicates_suppressed, SERVICE, stage).inc()
        self.count(raw.topic, "duplicate")
        self.audit("deduplicated", event, details={"by": why})

    def violations(self, event: Envelope, found: list[OwnershipViolation]) -> None:
        for v in found:
            self.metrics.ownership_violations.labels(
                v.entity, v.field, v.source_system, v.action
            ).inc()
        if found:
            decision: Decision = (
                "rejected" if any(v.action == "reject" for v in found) else "stripped"
            )
            self.audit(
                decision,
                event,
                details={"violations": [str(v) for v in found], "fields": [v.field for v in found]},
            )

    # -- entry point --------------------------------------------------------------------------
    def handle(self, raw: RawRecord) -> None:
        """Handle one record of a canonical topic; never raises for a bad record."""
        started = time.perf_counter()
        self._counted = False
        if raw.value is None:
            self.count(raw.topic, "skipped")
            return
        event: Envelope | None = None
        try:
            if raw.topic == self.topics.decisions:
                self.review.on_decision(raw)  # JSON decisions, not canonical events
            elif raw.topic == self.topics.account_match:
                self.linker.on_match(raw)  # the match index's exchange (JSON)
                self.count(raw.topic, "ok")
            elif raw.topic == self.topics.erp_forwarded:
                event = self.decode(raw.value)
                if (
                    not isinstance(event, OrderEvent | ShipmentEvent | InvoiceEvent)
                    or event.source.system != "erp"
                ):
                    raise ValidationError(
                        f"only ERP order, shipment and invoice changes are forwarded, not "
                        f"{type(event).__name__} from {event.source.system}",
                        reason=Reason.VALIDATION_FAILED,
                    )
                self.on_erp_change(event, raw)
                if not self._counted:
                    self.count(raw.topic, "ok")
            else:
                event = self.decode(raw.value)
                self._dispatch(event, raw)
        except InterlockError as exc:
            self.dead_letter(raw, exc, event)
        except Exception as exc:
            error = InterlockError(f"{type(exc).__name__}: {exc}", reason=Reason.PROCESSING_FAILED)
            error.__cause__ = exc
            self.dead_letter(raw, error, event)
        self._processing.observe(time.perf_counter() - started)

    def _dispatch(self, event: Envelope, raw: RawRecord) -> None:
        if event.source.system == "crm":
            last = None
            if isinstance(event, OrderEvent) and event.payload.crm_record_id:
                last = self.last_written(event.payload.crm_record_id)
            why = echo_reason(event, last, self.config.origin)
            if why is not None:
                self._child(self.metrics.echoes_suppressed, type(event).ENTITY).inc()
                self.count(raw.topic, "skipped")
                self.audit("echo_suppressed", event, details={"recognised_by": why})
                return
        if isinstance(event, AccountEvent):
            self.linker.on_account(event, raw)
        elif isinstance(event, QuoteEvent):
            self.quotes.on_quote(event, raw)
        elif isinstance(event, OrderEvent | ShipmentEvent | InvoiceEvent):
            self.on_erp_change(event, raw)
        else:
            self.count(raw.topic, "skipped")
            return
        if not self._counted:  # a handler that dead-lettered or deduplicated counted already
            self.count(raw.topic, "ok")

    # -- status write-back --------------------------------------------------------------------
    def on_erp_change(
        self, event: OrderEvent | ShipmentEvent | InvoiceEvent, raw: RawRecord
    ) -> None:
        """Correlate an ERP order/shipment/invoice change to its quote; write the deal back.

        ERP changes are keyed by the ERP customer's account id, the quote's state by the CRM
        account's: the two are in different partitions unless they happen to hash alike. The
        quote is found in any partition this worker holds, and the write-back then runs in the
        quote's own partition (its *home*), so every table entry of a quote lives in one
        partition whatever the store. Only the event id is marked seen in the event's partition,
        where a redelivery of it arrives. A change whose quote this worker does not hold, of a
        customer linked to a CRM account, is forwarded to ``link.erp-changes`` keyed by that
        account: the worker that holds it, and its quotes, handles it (and is never asked to
        forward it again).
        """
        if event.source.system == "crm":
            self._crm_order_change(event, raw)
            return
        if self.is_seen(event.event_id):
            self.duplicate(event, raw, "writeback", "event_id")
            return
        payload = event.payload
        quote_id = event.payload.quote_id if isinstance(event, OrderEvent) else None
        quote_id = quote_id or self.correlation.quote_of(payload.order_id, payload.erp_order_number)
        state = self.quotes.order_state(quote_id, anywhere=True) if quote_id else None
        if state is None and raw.topic != self.topics.erp_forwarded:
            linked = self.linker.crm_side(payload.account_id)
            if linked is not None:
                # Its quote may be kept by another worker: with the CRM account it was linked to.
                # Marked seen there, where it is handled; a redelivery here is forwarded again.
                self.emit(self.topics.erp_forwarded, linked.encode(), raw.value or b"",
                          [(FORWARDED_HEADER, raw.topic.encode())])  # fmt: skip
                self.audit("forwarded", event, details={"to_account": linked})
                return
        home = raw.partition if state is None else int(state.get("partition", raw.partition))
        with self.in_partition(home):
            self._write_back(event, raw, state, home)
        self.mark_seen(event.event_id, raw.partition)

    def _write_back(
        self,
        event: OrderEvent | ShipmentEvent | InvoiceEvent,
        raw: RawRecord,
        state: Mapping[str, Any] | None,
        home: int,
    ) -> None:
        """The deal update an ERP change asks for, in the partition of its quote (``home``)."""
        self.reconcile.on_erp_change(event, state, home)
        if state is None:
            self.audit("ignored", event, details={"why": "no quote correlates with this change"})
            return
        quote_id = str(state["quote_id"])
        number = event.payload.erp_order_number
        if number:
            self.correlation.numbered(quote_id, number)
            self.quotes.release_held(quote_id, number)
        # numbered() keeps this change's number as the quote's: no need to read it back
        known_number = number or self.correlation.number_of(quote_id)
        command = deal_update(
            event, {**state, "erp_order_number": known_number}, self.config.origin
        )
        if command is None:
            self.audit("ignored", event, details={"why": "status not reported to the CRM"})
            return
        write = deal_write_of(command)
        why = deal_shows(self.last_written(write.deal_id), write) if write.deal_id else None
        if why is not None:
            # Writing would add nothing (the deal already shows these values) or move the
            # deal back to an older status: either would only make noise in the CRM.
            self.duplicate(event, raw, "writeback", f"deal already shows it ({why})")
            return
        self.send_command("update-deal", command, write=write)

    def _crm_order_change(self, event: Envelope, raw: RawRecord) -> None:
        """A person changed a deal's order fields in the CRM: only CRM-owned fields count."""
        changes = event.changed_fields or [
            k for k, v in event.payload.model_dump().items() if v is not None
        ]
        decision = self.config.policy.apply(type(event).ENTITY, "crm", list(changes))
        self.violations(event, decision.violations)
        if isinstance(event, OrderEvent):
            owned = [v.field for v in decision.violations]
            self.reconcile.on_crm_change(event, owned, raw.partition)
        if decision.rejected:
            raise ValidationError(
                "; ".join(str(v) for v in decision.violations), reason=Reason.OWNERSHIP_VIOLATION
            )
        self.audit("merged", event, details={"applied": decision.allowed})

    # -- read back of our own commands ----------------------------------------------------------
    def on_command(self, raw: RawRecord) -> None:
        """A command became durable: fold it into the order state, forget it from in-flight."""
        if raw.value is None:
            return
        write = readback = None
        if raw.topic == self.topics.update_deal:
            write = deal_write_readback(raw.headers)
        else:
            readback = order_readback(raw.headers)
            if readback is not None and readback[2] is None and self.reconcile.enabled:
                readback = None  # written without the promise: decode it for the ledger
        if write is not None:
            self._deal_read_back(write, raw.partition)
            cause = write.cause
        elif readback is not None:
            state, cause, promise = readback
            self._order_read_back(state, raw.partition)
            self.reconcile.on_order_read_back(state, promise, raw.partition)
        else:
            command = self.decode(raw.value)
            if not isinstance(command, OrderEvent):
                return
            if raw.topic == self.topics.update_deal:
                self._deal_read_back(deal_write_of(command), raw.partition)
            elif command.payload.quote_id:
                state = order_state_of(command)
                self._order_read_back(state, raw.partition)
                self.reconcile.on_order_read_back(state, promise_of(command), raw.partition)
            cause = command.causation_id
        if cause:
            self.mark_seen(cause, raw.partition)
            self.inflight.causes.discard(cause)
        self.count(raw.topic, "ok")

    def _deal_read_back(self, write: DealWrite, partition: int) -> None:
        """What the deal shows now that ``write`` is durable; what the CRM was told."""
        deal = write.deal_id
        if deal:
            shown = fold_written(self.written.get(deal), write)
            self.written.put(deal, shown, at=self.clock(), partition=partition)
            if self.inflight.writebacks.get(deal) == shown:
                del self.inflight.writebacks[deal]
        self.reconcile.on_writeback_read_back(write, partition)

    def _order_read_back(self, state: dict[str, Any], partition: int) -> None:
        qid = str(state["quote_id"])
        current = self.orders.get(qid)
        # the quote's home partition, where an ERP change of its order is handled
        self.orders.put(qid, {**fold_order_state(current, state), "partition": partition})
        self.correlation.order_requested(str(state["order_id"]), qid)
        self.quotes.unpark(qid, str(state["account_id"]))
        pending = self.inflight.orders.get(qid)
        if pending is not None and pending.get("event_id") == state["event_id"]:
            del self.inflight.orders[qid]

    # -- timers -------------------------------------------------------------------------------
    def on_tick(self, partition: int, sweep: bool) -> None:
        """Release or time out parked quotes of ``partition``; expire old event ids and the
        written state of deals not written for as long (same TTL), every sweep interval and,
        while a sweep left more due, at every tick."""
        self.quotes.scan_parked(partition)
        self.reconcile.on_tick(partition)
        self.review.on_tick(partition)
        if sweep or partition in self._due:
            self._due.discard(partition)
            ttl = self.config.dedup_ttl_s
            if self.expiry.sweep(self.tables, partition, self.clock(), ttl):
                self._due.add(partition)
