"""The typed repositories over the worker's tables: what each reads back, and the exact keys and
values each writes. The keys are a running deployment's state (stores and changelogs): a change
to one of them here means the tables of a deployed worker no longer read, so these tests name
every key as a literal string."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.policy import load_policy
from contracts.review import Case
from processors.domain import housekeeping
from processors.domain.cases import open_case
from processors.repositories import (
    Accounts,
    Cases,
    Correlation,
    Identity,
    Ledger,
    LedgerKey,
    Orders,
    ParkedQuote,
    ParkingLot,
    QuoteLines,
    SeenEvents,
    WrittenDeals,
)

pytestmark = pytest.mark.unit


def test_accounts_are_kept_by_canonical_account_id() -> None:
    table: dict[str, Any] = {}
    accounts = Accounts(table)
    accounts.put("acc-1", {"account_id": "acc-1", "name": "Globex"})
    assert table == {"acc-1": {"account_id": "acc-1", "name": "Globex"}}
    assert accounts.get("acc-1") == {"account_id": "acc-1", "name": "Globex"}
    assert accounts.get("acc-1", anywhere=True) == accounts.get("acc-1")
    assert accounts.get("acc-2") is None


def test_identity_keeps_the_cross_reference_and_the_match_index_under_their_prefixes() -> None:
    table: dict[str, Any] = {}
    identity = Identity(table)
    identity.index("acc-1", crm_record_id="c-7", erp_customer_number="E-9")
    erp = {"side": "erp", "account": {"account_id": "acc-1", "tax_id": "DE123"}}
    crm = {"side": "crm", "account": {"account_id": "acc-2", "name": "Globex"}}
    identity.keep_match("tax:DE123", "acc-1", erp)
    identity.keep_match("tax:DE123", "acc-2", crm)
    assert table == {
        "crm:c-7": "acc-1",
        "erp:E-9": "acc-1",
        "m|tax:DE123": {"acc-1": erp, "acc-2": crm},
    }
    assert identity.matching("tax:DE123") == {"acc-1": erp, "acc-2": crm}
    assert identity.matching("name:globex") == {}
    identity.drop_match("tax:DE123", "acc-1")  # its tax id changed
    assert identity.matching("tax:DE123") == {"acc-2": crm}
    identity.drop_match("tax:DE123", "acc-2")
    assert "m|tax:DE123" not in table  # the last one out removes the entry


def test_orders_and_lines_are_kept_by_quote_id() -> None:
    orders_table: dict[str, Any] = {}
    lines_table: dict[str, Any] = {}
    orders, lines = Orders(orders_table), QuoteLines(lines_table)
    orders.put("q-1", {"quote_id": "q-1", "revision": 2, "partition": 3})
    lines.put("q-1", {"revision": 2, "lines": {"1": {"sku": "A"}}})
    assert orders_table == {"q-1": {"quote_id": "q-1", "revision": 2, "partition": 3}}
    assert lines_table == {"q-1": {"revision": 2, "lines": {"1": {"sku": "A"}}}}
    assert orders.get("q-1", anywhere=True) == orders.get("q-1") == orders_table["q-1"]
    assert lines.get("q-1") == lines_table["q-1"]
    assert orders.get("q-2") is None
    assert lines.get("q-2") is None


def _parked(quote_id: str, account_id: str = "acc-1") -> ParkedQuote:
    return {
        "quote_id": quote_id,
        "revision": 1,
        "account_id": account_id,
        "partition": 0,
        "parked_at": 10.0,
        "waiting_for": "account",
        "raw": {"topic": "t", "value": "e30="},
    }


def test_parked_quotes_and_their_account_index_use_q_and_a_keys() -> None:
    table: dict[str, Any] = {}
    lot = ParkingLot(table)
    lot.put(_parked("q-1"))
    lot.put(_parked("q-2"))
    lot.put(_parked("q-1"))  # parked again: indexed once
    assert set(table) == {"q:q-1", "q:q-2", "a:acc-1"}
    assert table["a:acc-1"] == ["q-1", "q-2"]
    assert lot.get("q-1") == _parked("q-1")
    assert [quote_id for quote_id, _ in lot.quotes()] == ["q-1", "q-2"]
    assert lot.remove("q-1", "acc-1")
    assert table == {"q:q-2": _parked("q-2"), "a:acc-1": ["q-2"]}
    assert lot.remove("q-2", "acc-1")
    assert table == {}
    assert not lot.remove("q-2", "acc-1")


def test_correlation_keys_order_ids_numbers_quotes_and_held_commands_apart() -> None:
    table: dict[str, Any] = {}
    correlation = Correlation(table)
    correlation.order_requested("o-1", "q-1")
    correlation.numbered("q-1", "SO-5")
    correlation.hold("q-2", "cancel-order", {"event_id": "e"})
    assert table == {
        "o:o-1": "q-1",
        "n:SO-5": "q-1",
        "q:q-1": "SO-5",
        "h:q-2": {"kind": "cancel-order", "command": {"event_id": "e"}},
    }
    assert correlation.quote_of("o-1", None) == correlation.quote_of(None, "SO-5") == "q-1"
    assert correlation.number_of("q-1") == "SO-5"
    assert correlation.take_held("q-2") == ("cancel-order", {"event_id": "e"})
    assert "h:q-2" not in table
    assert correlation.take_held("q-2") is None


class _Writes(dict[str, Any]):
    """A table that counts its writes (each one a store write and a changelog record)."""

    writes = 0

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes += 1
        super().__setitem__(key, value)


def test_an_accounts_names_and_match_entries_already_kept_are_not_written_again() -> None:
    table = _Writes()
    identity = Identity(table)
    identity.index("acc-1", crm_record_id="c-7", erp_customer_number="E-9")
    assert table.writes == 2
    identity.index("acc-1", crm_record_id="c-7", erp_customer_number="E-9")
    assert table.writes == 2
    identity.index("acc-2", crm_record_id="c-7", erp_customer_number="E-9")  # both changed
    assert table.writes == 4
    assert set(table.values()) == {"acc-2"}
    entry = {"side": "erp", "account": {"account_id": "acc-2"}}
    identity.keep_match("tax:DE1", "acc-2", entry)
    identity.keep_match("tax:DE1", "acc-2", dict(entry))  # every change republishes it
    assert table.writes == 5
    identity.drop_match("tax:DE1", "acc-9")  # not kept: nothing to write
    assert table.writes == 5


def test_an_erp_order_number_already_kept_is_not_written_again() -> None:
    table = _Writes()
    correlation = Correlation(table)
    correlation.numbered("q-1", "SO-5")
    assert table.writes == 2
    correlation.numbered("q-1", "SO-5")  # every later change of the order repeats its number
    assert table.writes == 2
    del table["n:SO-5"]  # half of it missing: that half is written again, the other kept
    correlation.numbered("q-1", "SO-5")
    assert (table.writes, table["n:SO-5"]) == (3, "q-1")
    correlation.numbered("q-1", "SO-6")  # renumbered
    assert (table.writes, table["q:q-1"], table["n:SO-6"]) == (5, "SO-6", "q-1")


def test_a_seen_mark_is_its_time_and_partition_the_time_its_expiry_reads() -> None:
    table: dict[str, Any] = {}
    seen = SeenEvents(table)
    seen.mark("evt-1", 4, 123.5)
    assert table == {"evt-1": [123.5, 4]}
    assert seen.seen_at("evt-1") == 123.5
    assert seen.seen_at("evt-2") is None
    assert housekeeping.seen_at(table["evt-1"]) == 123.5


def test_a_deals_written_state_keeps_when_and_where_it_became_durable() -> None:
    table: dict[str, Any] = {}
    written = WrittenDeals(table)
    written.put("deal-1", {"status": "SHIPPED"}, at=50.0, partition=2)
    assert table == {"deal-1": {"status": "SHIPPED", "_written_at": 50.0, "_partition": 2}}
    assert written.get("deal-1") == table["deal-1"]
    assert written.get("deal-2") is None
    assert housekeeping.written_at(table["deal-1"]) == 50.0
    assert housekeeping.written_at({"status": "SHIPPED"}) is None
    assert housekeeping.seen_at(None) is None


def test_the_ledger_keeps_quotes_orphans_and_deals_under_q_n_and_d() -> None:
    table: dict[str, Any] = {}
    ledger = Ledger(table)
    ledger.put(LedgerKey.quote("q-1"), {"quote_id": "q-1", "partition": 0})
    ledger.put(LedgerKey.orphan("SO-9"), {"number": "SO-9", "partition": 1})
    ledger.index_deal("deal-1", "q-1")
    assert table == {
        "q:q-1": {"quote_id": "q-1", "partition": 0},
        "n:SO-9": {"number": "SO-9", "partition": 1},
        "d:deal-1": "q-1",
    }
    assert LedgerKey.quote("q-1").stored == "q:q-1"
    assert LedgerKey.orphan("SO-9").stored == "n:SO-9"
    assert ledger.get(LedgerKey.quote("q-1")) == {"quote_id": "q-1", "partition": 0}
    assert ledger.get(LedgerKey.orphan("SO-9"), anywhere=True) == table["n:SO-9"]
    assert ledger.get(LedgerKey.orphan("q-1")) is None  # kinds do not share a key space
    assert ledger.quote_of_deal("deal-1") == "q-1"
    assert ledger.quote_of_deal("deal-2") is None


def test_the_ledgers_entries_of_a_partition_are_quotes_and_orphans_not_deals() -> None:
    table: dict[str, Any] = {
        "q:q-1": {"quote_id": "q-1", "partition": 0},
        "q:q-2": {"quote_id": "q-2", "partition": 1},
        "n:SO-9": {"number": "SO-9", "partition": 0},
        "d:deal-1": "q-1",
    }
    ledger = Ledger(table)
    assert list(ledger.entries(0)) == [
        (LedgerKey.quote("q-1"), table["q:q-1"]),
        (LedgerKey.orphan("SO-9"), table["n:SO-9"]),
    ]
    assert [key for key, _ in ledger.entries(1)] == [LedgerKey("quote", "q-2")]
    ledger.remove(LedgerKey.orphan("SO-9"))
    ledger.forget_deal("deal-1", "q-2")  # another quote's deal: kept
    assert "d:deal-1" in table
    ledger.forget_deal("deal-1", "q-1")
    assert set(table) == {"q:q-1", "q:q-2"}


def _case(subject: str = "q-1|1") -> Case:
    return open_case(
        load_policy(),
        kind="policy",
        subject=subject,
        reason="POLICY_LIMIT_EXCEEDED",
        now=1000.0,
        partition_key="acc-1",
        summary="over the limit",
        quote_id="q-1",
    )


def test_a_case_is_kept_by_its_id_with_its_partition_and_the_quote_it_holds() -> None:
    table: dict[str, Any] = {}
    cases = Cases(table)
    case = _case()
    quote = {"topic": "t", "partition": 0, "value": "e30="}
    cases.put(case, 2, quote)
    assert table == {
        case.case_id: {"case": case.model_dump(mode="json"), "partition": 2, "quote": quote}
    }
    assert cases.get(case.case_id) == case
    assert cases.held_quote(case.case_id) == quote
    closed = case.model_copy(update={"status": "rejected"})
    cases.put(closed, 2)  # a later state keeps the quote
    assert table[case.case_id]["quote"] == quote
    assert cases.open_in(2) == {}
    other = _case("q-2|1")
    cases.put(other, 3)
    assert cases.open_in(3) == {other.case_id: other}
    assert cases.get("nope") is None
    assert cases.held_quote("nope") is None
