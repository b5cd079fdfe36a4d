"""Two workers in process: each holds its own tables and sees only the records of its keys.

A company's CRM account, its quotes and the deal write-backs live with one worker; its ERP
customer and the ERP's order, shipment and invoice changes with the other. Every record either
writes for itself (links, the match index's exchange, forwarded ERP changes, commands read
back) goes to the worker that holds its key, as Kafka's partitions would send it. Nothing is
read across workers: what one needs of the other reaches it as a record.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from contracts import encode
from contracts.models import Envelope, OrderEvent
from contracts.review import decision_for, decode_case, encode_decision
from interlock.records import RawRecord
from processors.domain.quotes import order_id_for
from processors.pipeline import FORWARDED_HEADER
from tests.processors.events import (
    account_event,
    erp_order_event,
    invoice_event,
    quote_event,
    shipment_event,
    vague_account_match,
)
from tests.processors.harness import PipelineHarness, fed_back, worker_config
from tests.processors.test_linking_flow import GLOBEX_CRM, GLOBEX_ERP

pytestmark = pytest.mark.unit

#: Which worker holds a key (canonical account id or match key); any other key: worker 0.
#: Worker n holds partition n: a match key held by the account's own worker is handled at once,
#: one held by the other goes through the exchange (here: the CRM account's tax id and the ERP
#: customer's name).
HOLDER = {"crm-globex": 0, "erp-globex": 1, "tax:NL007701": 1, "name:globex": 0}


class TwoWorkers:
    """Two pipelines on separate dict tables; each record goes to the holder of its key."""

    def __init__(self, holder: Mapping[str, int]) -> None:
        self.holder = holder
        self.workers = [
            PipelineHarness(worker_config(partition_of=self.of), partition=n) for n in range(2)
        ]
        self.t = self.workers[0].t
        self._read = [0, 0]
        self._offset = 0

    def of(self, key: bytes | None) -> int:
        return self.holder.get((key or b"").decode(), 0)

    def send(self, topic: str, event: Envelope) -> None:
        key = str(getattr(event.payload, "account_id", "")).encode()
        self.workers[self.of(key)].send_raw(topic, key, encode(event), read_back=False)
        self.settle()

    def settle(self) -> None:
        """Deliver what either wrote for the workers until neither writes more."""
        written_for_itself, commands = set(fed_back(self.t)), set(self.t.commands())
        moved = True
        while moved:
            moved = False
            for n, h in enumerate(self.workers):
                while self._read[n] < len(h.records):
                    topic, key, value, headers = h.records[self._read[n]]
                    self._read[n] += 1
                    moved = True
                    target = self.workers[self.of(key)]
                    if topic in commands:  # keyed by the quote's account: read back by its holder
                        self._offset += 1
                        raw = RawRecord(topic, target.partition, self._offset, key, value,
                                        tuple(headers or ()))  # fmt: skip
                        target.pipeline.on_command(raw)
                    elif topic in written_for_itself:
                        target.send_raw(topic, key or b"", value, read_back=False)

    def written(self, topic: str) -> list[OrderEvent]:
        return [c for h in self.workers for c in h.commands(topic)]


def _linked_and_ordered() -> TwoWorkers:
    w = TwoWorkers(HOLDER)
    w.send(w.t.account, account_event("crm-globex", "crm", **GLOBEX_CRM))
    w.send(w.t.quote, quote_event("q-g", "crm-globex", payment_terms=None))
    w.send(w.t.account, account_event("erp-globex", "erp", version=2, **GLOBEX_ERP))
    return w


def test_a_company_split_across_workers_is_linked_and_its_quote_ordered() -> None:
    w = _linked_and_ordered()
    crm_worker, erp_worker = w.workers
    assert "crm-globex" not in erp_worker.tables.accounts  # neither reads the other's tables
    assert "erp-globex" not in crm_worker.tables.accounts
    (order,) = w.written(w.t.create_order)
    assert (order.payload.erp_customer_number, order.payload.payment_terms) == ("C-77", "NET60")
    assert crm_worker.tables.parked == {}
    (linked,) = [d for h in w.workers for d in h.decisions("linked")]
    assert linked["ids"] == {"account_id": "erp-globex", "candidate_id": "crm-globex"}


def test_the_erps_changes_of_the_order_reach_the_deal_from_the_other_worker() -> None:
    w = _linked_and_ordered()
    crm_worker, erp_worker = w.workers
    order_id = order_id_for("q-g")
    w.send(w.t.order, erp_order_event(order_id, "erp-globex", "q-g", number="SO-9"))
    w.send(w.t.shipment, shipment_event("erp-globex", order_id, "SO-9", "TRK-1"))
    w.send(w.t.invoice, invoice_event("erp-globex", order_id, "SO-9", "ISSUED"))
    updates = w.written(w.t.update_deal)
    assert [u.payload.status for u in updates] == ["CONFIRMED", "SHIPPED", "INVOICED"]
    assert {u.payload.crm_record_id for u in updates} == {"deal-q-g"}
    assert erp_worker.commands(w.t.update_deal) == []  # written by the quote's worker
    forwarded = [r for r in erp_worker.records if r[0] == w.t.erp_forwarded]
    assert [r[1] for r in forwarded] == [b"crm-globex"] * 3  # keyed by the CRM account
    assert dict(forwarded[0][3] or ())[FORWARDED_HEADER] == w.t.order.encode()
    assert [d["details"]["to_account"] for d in erp_worker.decisions("forwarded")] == [
        "crm-globex"
    ] * 3
    assert not any(
        d["details"].get("why") == "no quote correlates with this change"
        for h in w.workers
        for d in h.decisions("ignored")
    )
    # a redelivery of a forwarded change is forwarded again, and its quote's worker drops it
    w.send(w.t.invoice, invoice_event("erp-globex", order_id, "SO-9", "ISSUED"))
    assert len(w.written(w.t.update_deal)) == 3
    (dup,) = crm_worker.decisions("deduplicated")
    assert dup["details"]["by"] == "event_id"


def test_a_change_no_quote_claims_is_forwarded_once_and_left_to_reconciliation() -> None:
    w = _linked_and_ordered()
    crm_worker, erp_worker = w.workers
    stray = erp_order_event("o-stray", "erp-globex", None, number="SO-77")
    w.send(w.t.order, stray)
    assert len([r for r in erp_worker.records if r[0] == w.t.erp_forwarded]) == 1
    (ignored,) = [d for d in crm_worker.decisions("ignored") if d["event_id"] == stray.event_id]
    assert ignored["details"]["why"] == "no quote correlates with this change"
    assert [r for r in crm_worker.records if r[0] == w.t.erp_forwarded] == []  # never again


def test_a_forwarded_record_that_is_not_an_erp_change_is_dead_lettered_whole() -> None:
    h = PipelineHarness(worker_config())
    value = encode(account_event("crm-globex", "crm", **GLOBEX_CRM))
    h.send_raw(h.t.erp_forwarded, b"crm-globex", value)
    (dead,) = h.dead_letters(h.t.erp_forwarded)
    assert dead.value == value
    assert "crm-globex" not in h.tables.accounts


def test_a_persons_link_of_a_vague_match_across_workers_releases_the_quote() -> None:
    holder = {"crm-initech": 0, "erp-initech": 1, "name:initech": 1}
    w = TwoWorkers(holder)
    crm, erp = vague_account_match()
    w.send(w.t.account, crm)
    w.send(w.t.quote, quote_event("q1", "crm-initech"))
    w.send(w.t.account, erp)
    erp_worker = w.workers[1]  # the ERP customer's event found the vague match: its case
    (case,) = [decode_case(v) for t, _, v, _ in erp_worker.records if t == w.t.cases]
    assert (case.kind, case.partition_key) == ("account_match", "erp-initech")
    assert w.written(w.t.create_order) == []
    link = decision_for(case, "link", "sam", erp_worker.now, target="crm-initech")
    key, value = encode_decision(link)
    w.workers[w.of(key)].send_raw(w.t.decisions, key, value, read_back=False)
    w.settle()
    (order,) = w.written(w.t.create_order)
    assert (order.payload.quote_id, order.payload.erp_customer_number) == ("q1", "C-88")
    assert w.workers[0].tables.accounts["crm-initech"]["linked_account_id"] == "erp-initech"


def test_a_forwarded_crm_change_is_dead_lettered_not_taken_for_the_erps() -> None:
    h = PipelineHarness(worker_config())
    deal = erp_order_event(order_id_for("q-g"), "crm-globex", "q-g", system="crm")
    h.send_raw(h.t.erp_forwarded, b"crm-globex", encode(deal))
    (dead,) = h.dead_letters(h.t.erp_forwarded)
    assert dead.value == encode(deal)
    assert h.commands(h.t.update_deal) == []
