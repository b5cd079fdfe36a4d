"""Reconciliation: keep the parity ledger, find drift as events arrive and on the tick.

The pipeline hands this flow what it already handles: our order commands and update-deal
commands as they are read back (what the CRM promised, what the CRM was told), ERP order,
shipment and invoice changes (what the ERP did), and CRM changes to ERP-owned deal fields.
Each changes one ledger entry, which is then compared (:func:`processors.domain.reconcile.drift`)
and stored with the time it is next due (:func:`processors.domain.reconcile.next_due`: the
earliest SLA deadline whose passing opens a finding, or when it may be forgotten). Every
``reconcile_interval_s`` a partition's tick compares again the entries whose evaluation may
have changed with time, so drift that is an absence (no ERP order, no write-back) is found once
its SLA passes, and forgets the entries that agree and were not touched for ``dedup_ttl_s``.
Every finding that opens or resolves is one JSON record on ``audit.reconciliation``, keyed by
its subject.

How a tick finds those entries depends on the store, as for the dedup sweep
(:mod:`processors.expiry`):

- ``rocksdb://``: the ledger's store keeps a time index of the entries' due times beside them
  (:mod:`processors.rocksstore`), and a tick reads it up to ``now``, :data:`DUE_BATCH` entries
  at most (the rest at the next ticks), skipping index entries whose ledger entry is gone or
  was written again with another due time. The first tick of a partition after it was assigned
  walks all its entries once instead: that counts its open findings exactly (the counts are
  kept up to date as findings open and resolve from then on), and gives entries written before
  due times were kept (no ``due_at``) theirs.
- ``memory://``: every tick walks the partition's entries, as the store has no key order to
  index by. The findings opened and resolved, the entries forgotten and the counts are the
  same on both.

The ledger (:class:`processors.repositories.Ledger`) keeps an entry per quote, an entry per ERP
order no quote claimed yet (an orphan), and the quote of each CRM deal (to find the quote of a
CRM deal change).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from contracts.models import InvoiceEvent, OrderEvent, ShipmentEvent
from contracts.reconciliation import DRIFT_KINDS, encode_record
from processors.domain.housekeeping import DUE_AT
from processors.domain.reconcile import (
    Finding,
    Slas,
    Transitions,
    compare,
    erp_facts,
    fold_crm_shows,
    fold_erp,
    fold_promise,
    fold_told,
    merge_orphan,
    transitions,
)
from processors.domain.repair import writeback_repair
from processors.domain.writeback import DealWrite
from processors.expiry import DUE_BATCH
from processors.flow import FlowContext
from processors.repositories import Ledger, LedgerEntry, LedgerKey

__all__ = ["Reconciler"]


class Reconciler:
    """The parity ledger of the worker's partitions and the findings it raises."""

    batch = DUE_BATCH
    """Most due entries of the time index one partition's tick reads (``rocksdb://``)."""

    def __init__(self, context: FlowContext, ledger: Ledger | None) -> None:
        self.p = context
        config = context.config
        self.ledger = ledger
        self.slas = Slas(config.reconcile_order_sla_s, config.reconcile_writeback_sla_s)
        self._open: dict[int, Counter[str]] = {}
        """partition -> open findings by kind: exact after its first tick, then kept so."""
        self._scanned: dict[int, float] = {}
        """partition -> when its tick last ran (none yet since it was assigned: a walk)."""
        self._more: set[int] = set()
        """Partitions whose tick stopped at its batch: they go on at the next tick."""
        metrics = context.metrics
        self._drift = {str(k): metrics.reconciliation_drift.labels(str(k)) for k in DRIFT_KINDS}
        self._counted = metrics.reconciliation_findings

    @property
    def enabled(self) -> bool:
        return self.ledger is not None

    # -- what the pipeline hands over ---------------------------------------------------------
    def on_order_read_back(
        self, state: Mapping[str, Any], promise: Mapping[str, Any] | None, partition: int
    ) -> None:
        """A create, amend or cancel command became durable: the CRM's promise."""
        if self.ledger is None or promise is None:
            return
        key = LedgerKey.quote(str(state["quote_id"]))
        entry = self.ledger.get(key)
        folded = fold_promise(entry, state, promise, partition, self.p.clock())
        if folded == entry:
            return
        deal = folded.get("deal_id")
        if deal and (entry is None or entry.get("deal_id") != deal):
            self.ledger.index_deal(deal, str(state["quote_id"]))
        self._settle(key, folded, partition)

    def on_writeback_read_back(self, write: DealWrite, partition: int) -> None:
        """An update-deal command became durable: what the CRM was told."""
        quote_id = write.quote_id
        if self.ledger is None or not quote_id:
            return
        key = LedgerKey.quote(quote_id)
        entry = dict(self.ledger.get(key) or _bare(write, partition))
        now = self.p.clock()
        entry["told"] = fold_told(entry.get("told"), write, now)
        shows = {k: v for k, v in (entry.get("crm_shows") or {}).items()}
        for name in write.changed:
            shows.pop(name, None)  # the CRM took our write: its echo is not reported back
        entry["crm_shows"] = shows
        entry["updated_at"] = now
        self._settle(key, entry, partition)

    def on_erp_change(
        self,
        event: OrderEvent | ShipmentEvent | InvoiceEvent,
        quote: Mapping[str, Any] | None,
        partition: int,
    ) -> None:
        """An ERP change, with the order state of the quote it correlates with (None: none)."""
        if self.ledger is None:
            return
        now = self.p.clock()
        facts = erp_facts(event, ours=event.origin == self.p.config.origin)
        number = facts.get("number")
        if quote is None:
            if not number:
                return
            key = LedgerKey.orphan(number)
            orphan = dict(self.ledger.get(key) or {"number": number, "partition": partition})
            orphan["account_id"] = event.payload.account_id
            orphan["erp"] = fold_erp(orphan.get("erp"), facts, now)
            orphan["updated_at"] = now
            self._settle(key, orphan, partition)
            return
        key = LedgerKey.quote(str(quote["quote_id"]))
        entry = dict(self.ledger.get(key) or _bare_state(quote, partition))
        if number:
            # an orphan is kept where its ERP change arrived, not always the quote's partition
            orphan_key = LedgerKey.orphan(number)
            claimed = self.ledger.get(orphan_key, anywhere=True)
            if claimed is not None:
                entry = merge_orphan(entry, claimed)
                where = int(claimed.get("partition", partition))
                with self.p.in_partition(where):
                    self._forget(orphan_key, claimed, where)
        entry["erp"] = fold_erp(entry.get("erp"), facts, now)
        entry["updated_at"] = now
        self._settle(key, entry, partition)

    def on_crm_change(self, event: OrderEvent, erp_owned: list[str], partition: int) -> None:
        """A person changed ERP-owned fields of a deal in the CRM (not our echo)."""
        deal = event.payload.crm_record_id
        if self.ledger is None or not deal or not erp_owned:
            return
        quote_id = event.payload.quote_id or self.ledger.quote_of_deal(deal)
        key = LedgerKey.quote(quote_id) if quote_id else None
        entry = self.ledger.get(key) if key else None
        if key is None or entry is None:
            return
        entry = dict(entry)
        entry["crm_shows"] = fold_crm_shows(entry.get("crm_shows"), event, erp_owned)
        entry["updated_at"] = self.p.clock()
        self._settle(key, entry, partition)

    # -- the tick -----------------------------------------------------------------------------
    def on_tick(self, partition: int) -> None:
        """Every ``reconcile_interval_s`` (and at each tick while entries are left due): compare
        the entries of ``partition`` that are due again, and forget those that agree and were
        not touched for ``dedup_ttl_s``. See the module's docstring for how they are found."""
        if self.ledger is None:
            return
        now = self.p.clock()
        last = self._scanned.get(partition)
        if last is None or now - last >= self.p.config.reconcile_interval_s:
            self._scanned[partition] = now
        elif partition not in self._more:
            return
        self._more.discard(partition)
        if last is None or not self.ledger.indexed:
            self._walk(partition, now)
        elif self._settle_due(partition, now):
            self._more.add(partition)
        self._publish()

    def forget_partitions(self) -> None:
        """The worker's partitions were revoked: their findings are counted by their next owner."""
        self._open.clear()
        self._scanned.clear()
        self._more.clear()
        self._publish()

    def _walk(self, partition: int, now: float) -> None:
        """Compare every entry of ``partition``, and count its open findings anew."""
        assert self.ledger is not None
        counts: Counter[str] = Counter()
        stale: list[LedgerKey] = []
        # entries are removed after the walk (see Ledger.entries)
        for key, entry in self.ledger.entries(partition):
            settled = self._settle(key, entry, partition, write_unchanged=False)
            if self._forgettable(settled, now):
                stale.append(key)
            counts.update(str(stored["kind"]) for stored in settled["open"].values())
        for key in stale:
            left = self.ledger.get(key)
            if left is not None:
                self._forget(key, left, partition)
        self._open[partition] = counts  # the counts kept between ticks, made exact

    def _settle_due(self, partition: int, now: float) -> bool:
        """Compare the entries of ``partition`` due at ``now`` by the ledger's time index;
        True when more may be due. An index entry goes once read, unless its ledger entry is
        due within the millisecond (a later tick) or still due at the same time after its
        comparison; a settled entry written with a new due time has a new index entry."""
        assert self.ledger is not None
        due = self.ledger.due(partition, now, self.batch)
        read = []
        for item in due:
            entry = None if item.key is None else self.ledger.get(item.key)
            if item.key is not None and entry is not None and item.holds(entry):
                if float(entry[DUE_AT]) > now:
                    continue  # the index keeps milliseconds: due later in this one
                if entry.get("partition") == partition:  # as Ledger.entries walks them
                    settled = self._settle(item.key, entry, partition, write_unchanged=False)
                    if self._forgettable(settled, now):
                        self._forget(item.key, settled, partition)
                    elif item.holds(settled):
                        continue  # not written again: this index entry still stands for it
            read.append(item)
        self.ledger.forget_due(partition, read)
        return len(due) >= self.batch

    def _forgettable(self, settled: LedgerEntry, now: float) -> bool:
        """An entry that agrees and was not touched for ``dedup_ttl_s`` is forgotten."""
        updated = float(settled.get("updated_at", now))
        return not settled["open"] and now - updated >= self.p.config.dedup_ttl_s

    # -- findings -----------------------------------------------------------------------------
    def _settle(
        self, key: LedgerKey, entry: LedgerEntry, partition: int, write_unchanged: bool = True
    ) -> LedgerEntry:
        """Compare ``entry``, record what opened or resolved, store it with what is open and
        when it is next due (unchanged, it is written only if ``write_unchanged``); returns it
        as settled."""
        assert self.ledger is not None
        now = self.p.clock()
        found, due = compare(entry, now, self.slas, self.p.config.dedup_ttl_s)
        change = transitions(entry.get("open"), found, now)
        changed = bool(change.opened or change.resolved)
        settled = {**entry, "open": change.open}
        if due is None:
            settled.pop(DUE_AT, None)
        else:
            settled[DUE_AT] = due
        if changed:
            self._count(change, entry, partition, now)
        if changed or write_unchanged or settled.get(DUE_AT) != entry.get(DUE_AT):
            self.ledger.put(key, settled)
        if changed:
            self._publish()
        return settled

    def _count(
        self, change: Transitions, entry: dict[str, Any], partition: int, now: float
    ) -> None:
        """Record and count the findings that opened and resolved."""
        counts = self._open.setdefault(partition, Counter())
        for finding in change.opened:
            self._record_finding(entry, finding, now)
            counts[str(finding.kind)] += 1
        for fid, stored in change.resolved:
            self._record_resolved(fid, stored, now)
            counts[str(stored["kind"])] -= 1

    def _forget(self, key: LedgerKey, entry: Mapping[str, Any], partition: int) -> None:
        """Remove an entry; what was open about it is resolved (claimed by a quote, or gone)."""
        assert self.ledger is not None
        now = self.p.clock()
        counts = self._open.setdefault(partition, Counter())
        for fid, stored in (entry.get("open") or {}).items():
            self._record_resolved(fid, stored, now)
            counts[str(stored["kind"])] -= 1
        self.ledger.remove(key)
        deal = entry.get("deal_id")
        if deal:
            self.ledger.forget_deal(deal, entry.get("quote_id"))

    def _record_finding(self, entry: Mapping[str, Any], finding: Finding, now: float) -> None:
        repair = dict(finding.repair) if finding.repair else None
        if repair is not None and repair["command"] == "update-deal":
            command = writeback_repair(entry, finding, self.p.config.origin, now)
            repair["value"] = command.model_dump(mode="json")
        key, value = encode_record(
            "finding",
            finding.subject,
            now,
            finding_id=finding.finding_id,
            kind=str(finding.kind),
            quote_id=entry.get("quote_id"),
            account_id=entry.get("account_id"),
            deal_id=entry.get("deal_id"),
            details=finding.details,
            repair=repair,
        )
        self.p.emit(self.p.topics.reconciliation, key, value)
        self._counted.labels(str(finding.kind), "opened").inc()

    def _record_resolved(self, fid: str, stored: Mapping[str, Any], now: float) -> None:
        key, value = encode_record(
            "resolved",
            str(stored["subject"]),
            now,
            finding_id=fid,
            kind=str(stored["kind"]),
            opened_at=stored.get("opened_at"),
        )
        self.p.emit(self.p.topics.reconciliation, key, value)
        self._counted.labels(str(stored["kind"]), "resolved").inc()

    def _publish(self) -> None:
        totals: Counter[str] = Counter()
        for counts in self._open.values():
            totals.update(counts)
        for kind, gauge in self._drift.items():
            gauge.set(max(totals.get(kind, 0), 0))


def _bare(write: DealWrite, partition: int) -> dict[str, Any]:
    """The entry of a quote the ledger does not hold yet (before the ledger, or forgotten)."""
    return {
        "quote_id": write.quote_id,
        "account_id": write.account_id,
        "order_id": write.order_id,
        "deal_id": write.deal_id,
        "partition": partition,
    }


def _bare_state(state: Mapping[str, Any], partition: int) -> dict[str, Any]:
    return {
        "quote_id": state["quote_id"],
        "account_id": state.get("account_id"),
        "order_id": state.get("order_id"),
        "deal_id": state.get("deal_id"),
        "correlation_id": state.get("correlation_id"),
        "partition": partition,
    }
