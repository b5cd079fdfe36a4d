"""The worker on the RocksDB store (rocksdict): parked quotes and order state survive a restart."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from contracts import OrderEvent
from interlock.records import RawRecord
from processors.rocksstore import BY_TIME
from processors.state import CLEAN_STOP_MARKER
from tests.conftest import end_offsets
from tests.processors.conftest import PARTITIONS, ProcessorsEnv, Worker
from tests.processors.events import account_event, quote_event

pytestmark = pytest.mark.integration

pytest.importorskip("rocksdict")

OFFSET_KEY = b"__faust\0offset__"


def test_rocksdb_store_keeps_parked_quote_across_restart(proc_env: ProcessorsEnv) -> None:
    t = proc_env.topics
    store = {"INTERLOCK_PROCESSORS__STORE": "rocksdb://"}
    proc_env.send(t.quote, quote_event("q-r", "acc-r"))
    worker = proc_env.start_worker(**store)
    assert worker.wait_metric("interlock_parked_joins", 1) == 1, worker.output()
    assert worker.stop() == 0, worker.output()

    proc_env.send(t.account, account_event("acc-r"))  # arrives while no worker runs
    worker = proc_env.start_worker(**store)
    commands = proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 1)
    assert [c.payload.quote_id for c in commands if isinstance(c, OrderEvent)] == ["q-r"]
    assert worker.wait_metric("interlock_parked_joins", 0) == 0
    decisions = [r["decision"] for r in proc_env.audit() if r["ids"].get("quote_id") == "q-r"]
    assert decisions.count("parked") == 1  # recovered from the changelog, not parked again
    assert "released" in decisions


def test_rocksdb_tables_hold_the_configured_memtables(proc_env: ProcessorsEnv) -> None:
    """The memory bounds in settings reach every table's database (its OPTIONS file)."""
    t = proc_env.topics
    proc_env.send(t.account, account_event("acc-b"))
    proc_env.send(t.quote, quote_event("q-b", "acc-b"))
    worker = proc_env.start_worker(
        INTERLOCK_PROCESSORS__STORE="rocksdb://",
        INTERLOCK_PROCESSORS__ROCKSDB_WRITE_BUFFER_MB="3",
        INTERLOCK_PROCESSORS__ROCKSDB_WRITE_BUFFERS="3",
    )
    proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 1)
    options = sorted((proc_env.tmp / "data-0").glob("**/orders-*.db/OPTIONS-*"))
    assert options, worker.output()
    text = options[-1].read_text()
    assert "\n  write_buffer_size=3145728\n" in text
    assert "\n  max_write_buffer_number=3\n" in text
    assert worker.stop() == 0, worker.output()


def _send_accounts_and_quotes(proc_env: ProcessorsEnv, quotes: list[str]) -> None:
    """Four accounts, then an accepted quote for each id, spread over the accounts."""
    t = proc_env.topics
    for i in range(4):
        proc_env.send(t.account, account_event(f"acc-{i}"))
    for i, quote in enumerate(quotes):
        proc_env.send(t.quote, quote_event(quote, f"acc-{i % 4}"))


def _ordered(proc_env: ProcessorsEnv, env: dict[str, str], quotes: list[str]) -> Worker:
    """A worker that ordered every quote and read every command back into its tables."""
    _send_accounts_and_quotes(proc_env, quotes)
    worker = proc_env.start_worker(**env)
    proc_env.wait_for(proc_env.topics.create_order, lambda ev: len(ev) >= len(quotes))
    create_order = proc_env.topics.create_order
    assert worker.wait_metric("interlock_events_consumed_total", len(quotes), topic=create_order)
    return worker


def _replays_are_duplicates(
    proc_env: ProcessorsEnv, env: dict[str, str], quotes: list[str]
) -> None:
    """Restart on the same data, send the quotes again under new event ids: every one is a
    duplicate (quote id + revision), and none is ordered again, only if the orders table came
    back whole.

    A new quote per account follows the replays: once each is ordered, every replay before it
    in its partition has been handled. A killed worker may also read its last quotes again
    (their offsets were not committed yet), which are duplicates too, so the duplicates are
    at least the replays."""
    t = proc_env.topics
    worker = proc_env.start_worker(**env)
    for i, quote in enumerate(quotes):
        proc_env.send(t.quote, quote_event(quote, f"acc-{i % 4}", version=2))
    fresh = [f"fresh-{i}" for i in range(4)]
    for i, quote in enumerate(fresh):
        proc_env.send(t.quote, quote_event(quote, f"acc-{i}"))

    def fresh_ordered(events: list[Any]) -> bool:
        return set(fresh) <= {e.payload.quote_id for e in events}

    proc_env.wait_for(t.create_order, fresh_ordered)
    assert worker.metric(
        "interlock_events_consumed_total", topic=t.quote, outcome="duplicate"
    ) >= len(quotes), worker.output()
    ordered = sorted(e.payload.quote_id for e in proc_env.events(t.create_order))
    assert ordered == sorted(quotes + fresh), worker.output()
    assert worker.stop() == 0, worker.output()


def _persisted_offsets(data_dir: Path, table: str) -> dict[int, int | None]:
    """Partition → the changelog offset stored in that table partition's database (None: none)."""
    from rocksdict import AccessType, Options, Rdict

    found: dict[int, int | None] = {}
    for path in sorted(data_dir.glob(f"**/{table}-*.db")):
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            value = db.get(OFFSET_KEY)
        finally:
            db.close()
        found[int(path.name.removesuffix(".db").rpartition("-")[2])] = (
            None if value is None else int(value)
        )
    return found


def test_rocksdb_tables_record_the_changelog_offset_they_hold(proc_env: ProcessorsEnv) -> None:
    """After a clean stop each table partition holds its changelog's last offset, so a restarted
    worker's recovery replays only what follows; the restored state still catches duplicates."""
    data = proc_env.tmp / "rocks"
    env = {"INTERLOCK_PROCESSORS__STORE": "rocksdb://", "INTERLOCK_PROCESSORS__DATA_DIR": str(data)}
    quotes = [f"q-{i}" for i in range(12)]
    worker = _ordered(proc_env, env, quotes)
    assert worker.stop() == 0, worker.output()
    assert list(data.glob(f"**/{CLEAN_STOP_MARKER}")), worker.output()

    conf = proc_env.settings.kafka.librdkafka()
    for table in ("orders", "seen", "accounts"):
        changelog = f"{proc_env.app_id}-{table}-changelog"
        ends = end_offsets(conf, [(changelog, p) for p in range(PARTITIONS)])
        held = {p: end - 1 for (_, p), end in ends.items() if end > 0}
        assert held, table
        stored = _persisted_offsets(data, table)
        assert {p: stored.get(p) for p in held} == held, (table, stored, worker.output())

    _replays_are_duplicates(proc_env, env, quotes)


def test_rocksdb_tables_are_rebuilt_from_their_changelogs_after_a_crash(
    proc_env: ProcessorsEnv,
) -> None:
    """A killed worker's tables may hold writes whose changelog records were never delivered
    (here: order states removed behind its back), under offsets that say they are complete.
    The next start must not trust them."""
    from rocksdict import Options, Rdict

    data = proc_env.tmp / "rocks"
    env = {"INTERLOCK_PROCESSORS__STORE": "rocksdb://", "INTERLOCK_PROCESSORS__DATA_DIR": str(data)}
    quotes = [f"q-{i}" for i in range(8)]
    worker = _ordered(proc_env, env, quotes)
    changelog = f"{proc_env.app_id}-orders-changelog"
    keys = {f'"{quote}"'.encode() for quote in quotes}
    # table records reach their changelog at the next commit (processors.output.TableChangelogs)
    proc_env.wait_for_raw(changelog, lambda recs: keys <= {r.key for r in recs})
    conf = proc_env.settings.kafka.librdkafka()
    ends = end_offsets(conf, [(changelog, p) for p in range(PARTITIONS)])
    assert worker.stop(signal.SIGKILL) == -signal.SIGKILL
    assert not list(data.glob(f"**/{CLEAN_STOP_MARKER}"))
    # The tables are written without a write-ahead log, so a kill leaves in their files only
    # what a memtable flush put there: make each look complete up to its changelog's end,
    # with the order states missing. A start that trusted it would replay nothing.
    paths = list(data.glob("**/orders-*.db"))
    assert paths, worker.output()
    for path in paths:
        partition = int(path.name.removesuffix(".db").rpartition("-")[2])
        db = Rdict(str(path), Options(raw_mode=True))
        try:
            if ends.get((changelog, partition), 0) > 0:
                db[OFFSET_KEY] = str(ends[(changelog, partition)] - 1).encode()
            for quote in quotes:
                key = f'"{quote}"'.encode()
                if key in db:
                    del db[key]
        finally:
            db.close()
    held = [p for p, offset in _persisted_offsets(data, "orders").items() if offset is not None]
    assert held, "no partition recorded its changelog offset"

    _replays_are_duplicates(proc_env, env, quotes)


def test_rocksdb_sweep_forgets_expired_ids_through_the_time_index(proc_env: ProcessorsEnv) -> None:
    """On rocksdb:// every mark is indexed by time beside it and the sweep reads that index: the
    expired ids are deleted with tombstones in their changelog, and their index entries go.
    The index has no changelog of its own."""
    from rocksdict import AccessType, Options, Rdict

    t = proc_env.topics
    quotes = [f"q-{i}" for i in range(4)]
    _send_accounts_and_quotes(proc_env, quotes)
    data = proc_env.tmp / "swept"
    worker = proc_env.start_worker(
        INTERLOCK_PROCESSORS__STORE="rocksdb://",
        INTERLOCK_PROCESSORS__DATA_DIR=str(data),
        INTERLOCK_PROCESSORS__DEDUP_TTL_S="3",
        INTERLOCK_PROCESSORS__DEDUP_SWEEP_INTERVAL_S="1",
    )
    proc_env.wait_for(t.create_order, lambda ev: len(ev) >= len(quotes))
    seen_log = f"{proc_env.app_id}-seen-changelog"

    def forgotten(records: list[RawRecord]) -> bool:
        marked = {r.key for r in records if r.value is not None}
        return bool(marked) and marked <= {r.key for r in records if r.value is None}

    seen = proc_env.wait_for_raw(seen_log, forgotten, timeout=60)
    assert forgotten(seen), worker.output()
    assert worker.stop() == 0, worker.output()
    paths = sorted(data.glob("**/seen-*.db"))
    assert paths, worker.output()
    left = []
    for path in paths:
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            index = db.get_column_family(BY_TIME)
            left += list(index.keys())
            del index
        finally:
            db.close()
    assert left == [], left  # every mark was forgotten, and its entry with it
    assert not list(data.glob("**/expiry-*.db"))  # no expiry table


def test_rocksdb_reconciliation_finds_missing_orders_through_the_due_index(
    proc_env: ProcessorsEnv,
) -> None:
    """On rocksdb:// each ledger entry is indexed by the time it is next due, and the tick
    reads that index: quotes ordered and never answered by the ERP are found once their order
    SLA passes, each once, counted once, and left with nothing due."""
    import orjson
    from rocksdict import AccessType, Options, Rdict

    quotes = [f"q-{i}" for i in range(4)]
    data = proc_env.tmp / "ledger"
    worker = _ordered(
        proc_env,
        {
            "INTERLOCK_PROCESSORS__STORE": "rocksdb://",
            "INTERLOCK_PROCESSORS__DATA_DIR": str(data),
            "INTERLOCK_PROCESSORS__RECONCILE_ORDER_SLA_S": "3",
            "INTERLOCK_PROCESSORS__RECONCILE_INTERVAL_S": "1",
        },
        quotes,
    )

    def missing(records: list[RawRecord]) -> list[str]:
        found = [orjson.loads(r.value or b"{}") for r in records]
        return [f["subject"] for f in found if f.get("kind") == "RECON_ORDER_MISSING"]

    found = proc_env.wait_for_raw(
        proc_env.topics.reconciliation, lambda records: len(missing(records)) >= len(quotes)
    )
    assert sorted(missing(found)) == quotes, worker.output()
    drift = {"kind": "RECON_ORDER_MISSING"}
    assert worker.wait_metric("interlock_reconciliation_drift", len(quotes), **drift)
    assert worker.metric("interlock_reconciliation_drift", **drift) == len(quotes)
    assert worker.stop() == 0, worker.output()
    entries, current = {}, []
    for path in sorted(data.glob("**/ledger-*.db")):
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            held = {k: orjson.loads(v) for k, v in db.items() if k != OFFSET_KEY}
            index = db.get_column_family(BY_TIME)
            # an index entry left is stale: its entry is found and due no more
            current += [e for e in index.keys() if "due_at" in held.get(e[14:], {})]  # noqa: SIM118
            del index
        finally:
            db.close()
        entries.update({k: v for k, v in held.items() if k.startswith(b'"q:')})
    assert sorted(entries) == [f'"q:{q}"'.encode() for q in quotes]
    for entry in entries.values():
        assert [o["kind"] for o in entry["open"].values()] == ["RECON_ORDER_MISSING"]
        assert "due_at" not in entry  # open, and nothing more can open by time alone
    assert current == []
