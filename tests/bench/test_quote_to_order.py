"""The quote → order benchmark's run order and how its repeated bursts become one figure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.capacity.processes import MachineTimes
from bench.quote_to_order.bursts import abba, alternate, combine, settle
from bench.report import build_sections, render_results
from bench.sections.worker import quote_to_order_section
from tests.bench.test_report import MACHINE

pytestmark = pytest.mark.unit


def test_abba_gives_each_variant_the_same_mean_position() -> None:
    order = abba(["default", "other", "plain"], 2)
    assert order == ["default", "other", "plain", "plain", "other", "default"]
    for variant in ("default", "other", "plain"):
        positions = [n for n, v in enumerate(order, 1) if v == variant]
        assert sum(positions) / len(positions) == 3.5
    assert abba(["a", "b"], 3) == ["a", "b", "b", "a", "a", "b"]
    assert abba(["a", "b"], 1) == ["a", "b"]


def _burst(quotes: int, seconds: float, cpu: int, **extra: Any) -> dict[str, Any]:
    return {"quotes": quotes, "orders": quotes, "seconds": seconds,
            "events_per_s": round(quotes / seconds), "latency_p50_s": seconds / 2,
            "latency_p99_s": seconds, "cpu_us_per_quote": cpu, **extra}  # fmt: skip


def test_combined_bursts_are_the_rate_of_the_whole_and_keep_each_run() -> None:
    """10,000 quotes in 10 s and in 40 s: 400/s over the whole, not 625 (the mean of the rates)."""
    runs = [
        _burst(10_000, 10.0, 900, events_per_s_incl_read_back=800, peak_rss_mb=200.0),
        _burst(10_000, 40.0, 1_300, events_per_s_incl_read_back=200, peak_rss_mb=300.0),
    ]
    combined = combine(runs, [1, 6])
    assert combined["events_per_s"] == 400
    assert combined["events_per_s_incl_read_back"] == 320  # 20,000 / (12.5 s + 50 s)
    assert combined["seconds"] == 50.0
    assert combined["latency_p99_s"] == 25.0  # the median of 10 and 40
    assert combined["cpu_us_per_quote"] == 1_100
    assert combined["peak_rss_mb"] == 250.0
    assert combined["runs"] == [
        {"position": 1, "events_per_s": 1_000, "events_per_s_incl_read_back": 800,
         "cpu_us_per_quote": 900, "peak_rss_mb": 200.0, "settled": None},
        {"position": 6, "events_per_s": 250, "events_per_s_incl_read_back": 200,
         "cpu_us_per_quote": 1_300, "peak_rss_mb": 300.0, "settled": None},
    ]  # fmt: skip


def _machine(busy_per_s: list[float]) -> Any:
    """machine_times of a 2-core machine whose cores are busy ``busy_per_s[i]`` in second i."""
    seconds = iter(range(len(busy_per_s) + 1))
    totals = [0.0]
    for busy in busy_per_s:
        totals.append(totals[-1] + busy)

    def times() -> MachineTimes:
        i = next(seconds)
        return MachineTimes(busy_s=totals[i], idle_s=2.0 * i - totals[i])

    return times


def test_settle_waits_until_the_machine_is_quiet_and_says_how_long() -> None:
    slept: list[float] = []
    times = _machine([1.6, 0.9, 0.3, 0.1, 1.9])  # 80%, 45%, 15%, 5% busy: quiet in the 4th
    assert settle(times=times, sleep=slept.append, probe=lambda: 8.25) == {
        "settle_s": 4.0,
        "busy_share": 0.05,
        "probe_ms": 8.25,  # the host's speed, taken once quiet
    }
    assert slept == [1.0] * 4


def test_settle_gives_up_after_its_longest_wait() -> None:
    times = _machine([1.0] * 10)  # 50% busy throughout (other work on the machine)
    assert settle(times=times, sleep=lambda _s: None, most_s=3.0, probe=lambda: 8.0) == {
        "settle_s": 3.0,
        "busy_share": 0.5,
        "probe_ms": 8.0,
    }


def test_alternate_runs_each_variant_after_a_settle_and_skips_what_its_runner_skips() -> None:
    ran: list[str] = []
    waits = iter(range(1, 10))

    def run(variant: str) -> dict[str, Any] | None:
        ran.append(variant)
        return None if variant == "b" and ran.count("b") == 1 else {"variant": variant}

    bursts, positions = alternate(
        ["a", "b", "b", "a"], run, quiet=lambda: {"settle_s": float(next(waits))}
    )
    assert ran == ["a", "b", "b", "a"]
    assert positions == {"a": [1, 4], "b": [3]}  # the first b was skipped
    assert bursts["a"] == [
        {"variant": "a", "settled": {"settle_s": 1.0}},
        {"variant": "a", "settled": {"settle_s": 4.0}},
    ]
    assert bursts["b"] == [{"variant": "b", "settled": {"settle_s": 3.0}}]


def test_a_run_without_a_rate_leaves_the_combined_rate_unknown() -> None:
    runs = [_burst(100, 1.0, 10), {**_burst(100, 1.0, 10), "events_per_s": None}]
    assert combine(runs, [1, 2])["events_per_s"] is None
    assert "events_per_s_incl_read_back" not in combine(runs, [1, 2])


def test_the_section_shows_cpu_per_quote_and_the_order_of_the_runs(tmp_path: Path) -> None:
    default = combine([_burst(10_000, 10.0, 1_000), _burst(10_000, 12.5, 1_200)], [1, 6])
    other = combine([_burst(10_000, 8.0, 700), _burst(10_000, 8.0, 740)], [2, 5])
    plain = combine([_burst(10_000, 4.0, 300, peak_rss_mb=90.0),
                     _burst(10_000, 4.0, 320, peak_rss_mb=110.0)], [3, 4])  # fmt: skip
    doc = {
        "store": "rocksdb://",
        "faust_worker": default,
        "faust_worker_other_store": {**other, "store": "memory://"},
        "plain_confluent_loop": plain,
        "rounds": 2,
        "order": ["default", "other", "plain", "plain", "other", "default"],
    }
    rows = {r.measure: r for r in quote_to_order_section(doc).rows}
    assert rows["faust worker on rocksdb://: CPU per quote"].value == 1_100
    assert rows["faust worker on rocksdb://: CPU per quote"].baseline == 310
    assert rows["faust worker on rocksdb:// vs memory://: CPU per quote"].ratio == 1_100 / 720
    assert "faust worker on rocksdb://: peak memory (RSS)" not in rows  # not measured
    store = rows["faust worker on rocksdb:// vs memory://"]
    assert store.value == 889  # 20,000 quotes over 22.5 s
    assert store.baseline == 1_250
    (tmp_path / "quote_to_order.json").write_text(json.dumps(doc))
    md = render_results(build_sections(tmp_path), MACHINE)
    assert (
        "in this order: `rocksdb://`, `memory://`, plain loop, plain loop, `memory://`, "
        "`rocksdb://`" in md
    )
    assert "`rocksdb://`: #1 1,000/s, 1,000 µs; #6 800/s, 1,200 µs" in md
    assert "plain loop: #3 2,500/s, 300 µs, 90.0 MiB; #4 2,500/s, 320 µs, 110.0 MiB" in md


def test_the_section_shows_each_burst_s_peak_memory_beside_the_plain_loop_s() -> None:
    default = combine([_burst(100, 1.0, 10, peak_rss_mb=600.0),
                       _burst(100, 1.0, 10, peak_rss_mb=640.0)], [1, 4])  # fmt: skip
    plain = combine([_burst(100, 1.0, 5, peak_rss_mb=100.0),
                     _burst(100, 1.0, 5, peak_rss_mb=120.0)], [2, 3])  # fmt: skip
    doc = {"store": "rocksdb://", "faust_worker": default, "plain_confluent_loop": plain,
           "rounds": 2, "order": ["default", "plain", "plain", "default"]}  # fmt: skip
    rows = {r.measure: r for r in quote_to_order_section(doc).rows}
    memory = rows["faust worker on rocksdb://: peak memory (RSS)"]
    assert (memory.value, memory.unit, memory.baseline) == (620.0, "MiB", 110.0)


def test_the_section_flags_runs_on_a_host_whose_speed_changed() -> None:
    def burst(seconds: float, probe: float) -> dict[str, Any]:
        return {**_burst(10_000, seconds, 300), "settled": {"settle_s": 1.0, "probe_ms": probe}}

    steady = [burst(1.0, 8.0), burst(1.0, 8.4)]
    doc = {"store": "rocksdb://", "rounds": 2, "order": ["default", "plain", "plain", "default"],
           "faust_worker": combine([burst(4.0, 8.1), burst(4.0, 8.3)], [1, 4]),
           "plain_confluent_loop": combine(steady, [2, 3])}  # fmt: skip
    notes = " ".join(quote_to_order_section(doc).notes)
    assert "(waited 1 s, probe 8.1 ms)" in notes
    assert "host's speed varied" not in notes  # 8.0 to 8.4 ms: within 25%
    doc["plain_confluent_loop"] = combine([burst(2.0, 16.0), burst(1.0, 8.0)], [2, 3])
    notes = " ".join(quote_to_order_section(doc).notes)
    assert "**the host's speed varied during the run**" in notes
    assert "took 8.0 to 16.0 ms, 2.00x" in notes


def test_the_plain_loop_runs_the_pipeline_as_the_worker_configures_it() -> None:
    """The baseline does the worker's work per record: the review gate, the reconciliation
    ledger, every table, the match index's partitioner (before, it ran without the first two)."""
    from confluent_kafka import Producer

    from bench.quote_to_order.plain_loop import plain_pipeline
    from interlock.deadletter import DeadLetterWriter
    from interlock.kafka import key_partition
    from interlock.settings import Settings
    from processors.agents import pipeline_config
    from processors.output import Output

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    settings.processors.topic_prefix = "plain."
    producer = Producer({"bootstrap.servers": "127.0.0.1:9"})  # never sends: nothing produced
    pipeline = plain_pipeline(settings, 6, Output(producer), DeadLetterWriter(producer, "bench"))
    worker = pipeline_config(settings, 6)
    assert pipeline.reconcile.enabled
    assert pipeline.review.enabled
    assert pipeline.config.commercial == worker.commercial is not None
    assert pipeline.config.topics.quote == "plain.canonical.quote.v1"
    for name in ("join_grace_s", "dedup_ttl_s", "match_threshold", "origin", "policy"):
        assert getattr(pipeline.config, name) == getattr(worker, name)
    keys = [f"a{n}".encode() for n in range(50)]
    assert [pipeline.config.partition_of(k) for k in keys] == [
        key_partition(k, partitions=6) for k in keys
    ]
    assert len({pipeline.config.partition_of(k) for k in keys}) > 1


def test_the_section_splits_the_worker_s_cost_into_durable_state_s_and_faust_s() -> None:
    """The plain loop with changelogs beside the plain loop and beside each worker; no target."""
    default = combine([_burst(10_000, 10.0, 1_000)], [1])
    other = combine([_burst(10_000, 8.0, 700)], [2])
    plain = combine([_burst(10_000, 4.0, 300)], [3])
    durable = combine([_burst(10_000, 5.0, 400)], [4])
    doc = {"store": "rocksdb://", "faust_worker": default,
           "faust_worker_other_store": {**other, "store": "memory://"},
           "plain_confluent_loop": plain, "plain_loop_with_changelogs": durable,
           "rounds": 1, "order": ["default", "other", "plain", "changelogs"]}  # fmt: skip
    section = quote_to_order_section(doc)
    rows = {r.measure: r for r in section.rows}
    loop = rows["plain loop with the worker's changelogs"]
    assert (loop.value, loop.baseline, loop.target) == (2_000, 2_500, None)
    faust = rows["faust worker on memory:// vs plain loop with the worker's changelogs"]
    assert (faust.value, faust.baseline, faust.ratio) == (1_250, 2_000, 0.625)
    cpu = rows[
        "faust worker on rocksdb:// vs plain loop with the worker's changelogs: CPU per quote"
    ]
    assert (cpu.value, cpu.baseline) == (1_000, 400)
    assert rows["plain loop with the worker's changelogs: CPU per quote"].baseline == 300
    # not mistaken for a worker: the worker rows against the plain loop are the workers' only
    assert "plain loop with changelogs" not in rows
    assert any("plain loop with changelogs: #4 2,000/s, 400 µs" in n for n in section.notes)


def test_a_changelog_dict_writes_as_the_worker_s_tables_do() -> None:
    """One record per key and commit, to the current record's partition, in Faust's json; the
    ``seen`` marks held apart, after the table records."""
    import asyncio

    from bench.quote_to_order.plain_loop import CurrentPartition, changelog_tables
    from interlock.instruments import Instruments
    from interlock.metrics import new_registry
    from processors.output import TableChangelogs

    sent: list[tuple[Any, ...]] = []
    flushed: list[int] = []

    async def flush() -> None:
        flushed.append(len(sent))

    changelogs = TableChangelogs(lambda *r: sent.append(r), flush, Instruments(new_registry(), "t"))
    current = CurrentPartition()
    tables = changelog_tables("app", changelogs, current)
    current.partition = 3
    tables.orders["q1"] = {"state": "requested"}
    tables.orders["q1"] = {"state": "created"}
    with current.within(5):
        tables.accounts["a1"] = {"name": "Acme"}
    tables.seen["e1"] = [1.5, 3]
    del tables.orders["q1"]
    changelogs.emit_pending()
    assert sent == [
        ("app-orders-changelog", b'"q1"', None, None, 3),  # the last write of its key only
        ("app-accounts-changelog", b'"a1"', b'{"name":"Acme"}', None, 5),
    ]
    asyncio.run(changelogs.release_marks())
    assert sent[2:] == [("app-seen-changelog", b'"e1"', b"[1.5,3]", None, 3)]
    assert flushed == [3]
    assert dict(tables.accounts) == {"a1": {"name": "Acme"}}
    assert "q1" not in tables.orders
