"""On ``rocksdb://`` a CRM account is still linked to its ERP customer in another partition.

Linking by tax id and a vague match sent to review are ``test_linking_flow.py`` (in process).
What only a worker shows: its RocksDB store reads one partition per event, and the two sides
have different canonical ids, so their partitions differ; the match index and the candidate
must be read beyond the current event's partition.
"""

from __future__ import annotations

import json

import pytest

from contracts import OrderEvent
from tests.processors.conftest import ProcessorsEnv
from tests.processors.events import ADDRESS, account_event, quote_event

pytestmark = pytest.mark.integration


def test_on_rocksdb_a_link_and_a_review_are_found_across_partitions(
    proc_env: ProcessorsEnv,
) -> None:
    t = proc_env.topics
    crm = account_event(
        "crm-globex", "crm", crm_record_id="co-7", name="Globex", web_domain="globex.example",
        tax_id="NL 0077.01",
    )  # fmt: skip
    erp = account_event(
        "erp-globex", "erp", version=2, erp_customer_number="C-77", legal_name="Globex B.V.",
        tax_id="NL007701", currency="EUR", payment_terms="NET60", billing_address=ADDRESS,
        credit_hold=False,
    )  # fmt: skip
    vague_crm = account_event("crm-initech", "crm", crm_record_id="co-8", name="Initech")
    vague_erp = account_event(
        "erp-initech", "erp", version=2, erp_customer_number="C-88", legal_name="Initech Ltd"
    )
    proc_env.send(t.account, crm, vague_crm)
    proc_env.send(t.quote, quote_event("q-g", "crm-globex", payment_terms=None))
    worker = proc_env.start_worker(
        INTERLOCK_LOG_LEVEL="INFO", INTERLOCK_PROCESSORS__STORE="rocksdb://"
    )
    worker.wait_metric("interlock_parked_joins", 1)  # known but not linked yet: waits
    proc_env.send(t.account, erp, vague_erp)

    commands = proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 1, timeout=20)
    assert len(commands) == 1, worker.log.read_text()[-6000:]
    order = commands[0]
    assert isinstance(order, OrderEvent)
    assert order.payload.erp_customer_number == "C-77"
    assert order.payload.payment_terms == "NET60"  # ERP terms reached the CRM-side account

    reviews = proc_env.wait_for_raw(t.review, lambda recs: len(recs) >= 1)
    requests = [json.loads(r.value or b"{}") for r in reviews]
    # the account read second finds the other: the two partitions are read in no fixed order
    pairs = {frozenset((r["account_id"], r["candidate"])) for r in requests}
    assert pairs == {frozenset(("erp-initech", "crm-initech"))}, requests
