"""Linking by search through ``link.account-match``: the records each side sends and answers.

In process, one record at a time where the order matters: an account publishes a snapshot to
each of its match keys' partitions (keyed by the match key), a key's partition answers an
account that asks (keyed by that account), and the account decides once every key answered.
Most tests put every match key in another partition than the account's (``exchanging``), so
that every key goes through the exchange; a key of the account's own partition is handled at
once, with the same outcome.
The worker runs the same records through Kafka, whichever workers hold the partitions
(``tests/e2e/test_up.py`` runs two).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from contracts.errors import Reason
from processors.repositories.accounts import MATCH_KEY_LIMIT
from tests.processors.events import account_event, quote_event
from tests.processors.harness import PipelineHarness, worker_config
from tests.processors.test_linking_flow import GLOBEX_CRM, GLOBEX_ERP

pytestmark = pytest.mark.unit


def _elsewhere(_key: bytes) -> int:
    return 1  # the harness hands the pipeline records of partition 0


def exchanging() -> PipelineHarness:
    """A worker whose accounts' match keys all live in another partition than theirs."""
    return PipelineHarness(worker_config(partition_of=_elsewhere))


def match_records(h: PipelineHarness, since: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """(key, record) of every ``link.account-match`` record written from ``since`` on."""
    return [
        ((k or b"").decode(), json.loads(v))
        for t, k, v, _ in h.records[since:]
        if t == h.t.account_match
    ]


def test_each_account_publishes_itself_to_its_keys_and_the_later_one_finds_the_earlier() -> None:
    h = exchanging()
    h.send(h.t.account, account_event("crm-globex", "crm", **GLOBEX_CRM))
    sent = match_records(h)
    keys = ["tax:NL007701", "name:globex", "domain:globex.example"]
    snapshots = [(k, r) for k, r in sent if r["kind"] == "account"]
    assert [k for k, _ in snapshots] == keys  # keyed by match key: one partition per key
    assert {r["side"] for _, r in snapshots} == {"crm"}
    assert snapshots[0][1]["account"]["crm_record_id"] == "co-7"
    assert "match_published" not in snapshots[0][1]["account"]  # its own bookkeeping stays home
    answers = [(k, r) for k, r in sent if r["kind"] == "candidates"]
    assert [k for k, _ in answers] == ["crm-globex"] * 3  # keyed by the account that asked
    assert all(r["candidates"] == [] for _, r in answers)  # nothing of the ERP side yet
    assert "match_asked" not in h.tables.accounts["crm-globex"]  # every key answered
    assert h.tables.identity["m|tax:NL007701"]["crm-globex"]["side"] == "crm"

    since = len(h.records)
    h.send(h.t.account, account_event("erp-globex", "erp", version=2, **GLOBEX_ERP))
    answers = [r for _, r in match_records(h, since) if r["kind"] == "candidates"]
    found = {r["key"]: [c["account_id"] for c in r["candidates"]] for r in answers
             if r["account_id"] == "erp-globex"}  # fmt: skip
    assert found == {"tax:NL007701": ["crm-globex"], "name:globex": ["crm-globex"]}
    (linked,) = h.decisions("linked")
    assert linked["ids"] == {"account_id": "erp-globex", "candidate_id": "crm-globex"}
    assert h.tables.accounts["crm-globex"]["linked_account_id"] == "erp-globex"


def test_a_key_of_the_accounts_own_partition_is_indexed_at_once_with_the_same_outcome() -> None:
    outcomes = []
    for h in (PipelineHarness(worker_config()), exchanging()):  # one partition, then the exchange
        h.send(h.t.account, account_event("crm-globex", "crm", **GLOBEX_CRM))
        h.send(h.t.quote, quote_event("q-g", "crm-globex", payment_terms=None))
        h.send(h.t.account, account_event("erp-globex", "erp", version=2, **GLOBEX_ERP))
        index = {k: v for k, v in h.tables.identity.items() if k.startswith("m|")}
        linked = [(d["ids"], d["details"], d["event_id"]) for d in h.decisions("linked")]
        (order,) = h.commands(h.t.create_order)
        outcomes.append((index, linked, order.event_id, match_records(h) == []))
    (index, linked, order, none_sent), exchanged = outcomes
    assert none_sent  # nothing went through link.account-match
    assert (index, linked, order) == exchanged[:3]
    assert set(index["m|tax:NL007701"]) == {"crm-globex", "erp-globex"}
    assert len(linked) == 1


def _ask(h: PipelineHarness) -> tuple[dict[str, Any], str]:
    """The CRM account known, then the ERP customer asks without any answer read yet: its
    question as its state keeps it, and the CRM snapshot a key would answer with."""
    h.send(h.t.account, account_event("crm-globex", "crm", **GLOBEX_CRM))
    crm = h.tables.identity["m|tax:NL007701"]["crm-globex"]["account"]
    h.send(h.t.account, account_event("erp-globex", "erp", version=2, **GLOBEX_ERP),
           read_back=False)  # fmt: skip
    h.lose_in_flight()  # the snapshots it sent are not handled: answers come by hand below
    asked = h.tables.accounts["erp-globex"]["match_asked"]
    return crm, asked["cause"]["event_id"]


def _answer(h: PipelineHarness, key: str, asked: str, candidates: list[Any]) -> None:
    record = {"kind": "candidates", "key": key, "account_id": "erp-globex", "asked": asked,
              "candidates": candidates}  # fmt: skip
    h.send_raw(h.t.account_match, b"erp-globex", orjson.dumps(record))


def test_an_account_decides_only_once_every_key_has_answered() -> None:
    h = exchanging()
    crm, asked = _ask(h)
    assert h.tables.accounts["erp-globex"]["match_asked"]["keys"] == ["tax:NL007701", "name:globex"]
    _answer(h, "name:globex", asked, [])  # this key found nothing
    assert h.decisions("linked") == []  # the tax id's key has not answered yet
    _answer(h, "tax:NL007701", asked, [crm])
    (linked,) = h.decisions("linked")
    assert linked["ids"] == {"account_id": "erp-globex", "candidate_id": "crm-globex"}
    assert "match_asked" not in h.tables.accounts["erp-globex"]
    _answer(h, "tax:NL007701", asked, [crm])  # the same answer again (a redelivery)
    assert len(h.decisions("linked")) == 1


def test_an_answer_to_an_older_question_is_left_alone() -> None:
    h = exchanging()
    crm, _ = _ask(h)
    for key in ("tax:NL007701", "name:globex"):
        _answer(h, key, "an-event-the-account-no-longer-asks-about", [crm])
    assert h.decisions("linked") == []
    assert h.tables.accounts["erp-globex"]["match_asked"]["answers"] == {}


def test_a_renamed_account_leaves_its_old_keys_index() -> None:
    h = exchanging()
    h.send(h.t.account, account_event("crm-initech", "crm", crm_record_id="co-8", name="Initech"))
    assert "crm-initech" in h.tables.identity["m|name:initech"]
    since = len(h.records)
    h.send(h.t.account, account_event("crm-initech", "crm", version=2, crm_record_id="co-8",
                                      name="Initrode"))  # fmt: skip
    drops = [(k, r) for k, r in match_records(h, since) if r["kind"] == "drop"]
    assert drops == [("name:initech", {"kind": "drop", "key": "name:initech",
                                       "account_id": "crm-initech"})]  # fmt: skip
    assert "m|name:initech" not in h.tables.identity
    assert "crm-initech" in h.tables.identity["m|name:initrode"]


def test_the_link_releases_the_quote_that_waited_for_it() -> None:
    h = exchanging()
    crm, asked = _ask(h)
    h.send(h.t.quote, quote_event("q-g", "crm-globex", payment_terms=None))
    assert h.tables.parked["q:q-g"]["waiting_for"] == "link"
    _answer(h, "name:globex", asked, [crm])
    _answer(h, "tax:NL007701", asked, [crm])
    (order,) = h.commands(h.t.create_order)
    assert (order.payload.erp_customer_number, order.payload.payment_terms) == ("C-77", "NET60")


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        b"[1, 2]",
        b'{"kind": "gossip", "key": "k", "account_id": "a"}',
        b'{"kind": "account", "key": "k", "account_id": "a", "side": "both", "account": {}}',
        b'{"kind": "candidates", "key": "k", "account_id": "a", "asked": "e", "candidates": [1]}',
    ],
)
def test_a_bad_match_record_is_dead_lettered_whole_and_the_next_one_goes_on(value: bytes) -> None:
    h = PipelineHarness(worker_config())
    h.send_raw(h.t.account_match, b"k", value)
    (dead,) = h.dead_letters(h.t.account_match)
    assert dead.value == value  # its bytes intact
    assert h.waited_for == [False]  # its offset is committed once it is durable: no wait here
    assert dict(dead.headers)["interlock.dlq.reason"] == Reason.DECODE_FAILED.value.encode()
    h.send(h.t.account, account_event("crm-initech", "crm", crm_record_id="co-8", name="Initech"))
    assert "crm-initech" in h.tables.identity["m|name:initech"]


def test_a_key_shared_by_too_many_accounts_keeps_no_more_and_answers_a_newcomer_with_none() -> None:
    h = exchanging()
    for n in range(MATCH_KEY_LIMIT):  # as many ERP customers called "Acme" as a key keeps
        h.send(h.t.account, account_event(f"erp-{n}", "erp", erp_customer_number=f"C-{n}",
                                          legal_name="Acme"))  # fmt: skip
    assert len(h.tables.identity["m|name:acme"]) == MATCH_KEY_LIMIT
    since = len(h.records)
    h.send(h.t.account, account_event("crm-acme", "crm", crm_record_id="co-1", name="Acme"))
    assert "crm-acme" not in h.tables.identity["m|name:acme"]
    (answer,) = [r for _, r in match_records(h, since) if r["kind"] == "candidates"]
    assert (answer["key"], answer["candidates"]) == ("name:acme", [])
    assert h.decisions("review_requested") == []
    assert h.decisions("linked") == []
    # one already kept still changes its entry
    h.send(h.t.account, account_event("erp-0", "erp", version=2, erp_customer_number="C-0",
                                      legal_name="Acme", web_domain="acme.example"))  # fmt: skip
    assert h.tables.identity["m|name:acme"]["erp-0"]["account"]["web_domain"] == "acme.example"
