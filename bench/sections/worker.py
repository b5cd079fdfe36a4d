"""RESULTS.md sections of the worker: quote → order, in process, Quix Streams, recovery, sweep."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.harness import host_speed_caveat
from bench.quote_to_order.bursts import QUIET_BUSY_SHARE, QUIET_MAX_S
from bench.sections.targets import (
    FAUST_VS_QUIX_TARGET,
    INPROCESS_TARGET,
    SCALING_NOTE,
    STORE_TARGET,
    WORKER_TARGET,
)
from bench.table import Row, Section

__all__ = [
    "inprocess_section",
    "quix_section",
    "quote_to_order_section",
    "recovery_section",
    "sweep_section",
]


def quote_to_order_section(d: Mapping[str, Any]) -> Section:
    s = Section("quote_to_order", "Quote → order: Faust worker vs plain confluent-kafka loop")
    plain = d.get("plain_confluent_loop") or {}
    base = plain.get("events_per_s")
    label = "plain confluent-kafka loop, same Pipeline"
    # like with like: to the read-back of the last command on both sides where the plain
    # loop reported it (the plain loop reads its own commands back after the whole backlog
    # of quotes, so its figure to the last command leaves that work out of its span)
    base_sustained = plain.get("events_per_s_incl_read_back")
    label_sustained = f"{label}, incl. read-back" if base_sustained else label
    base_sustained = base_sustained or base
    one: float | None = None
    one_sustained: float | None = None
    for key, entry in d.items():
        # the warm-up is not measured: it is there so no measured run pays for a cold broker
        if key in ("warm_up", DURABLE_KEY) or entry is plain:
            continue
        if not isinstance(entry, Mapping) or "events_per_s" not in entry:
            continue
        workers = int(entry.get("workers", 2 if "two" in key else 1))
        name = key.replace("_", " ")
        if entry.get("store"):
            name = f"faust worker on {entry['store']}"
        # the target holds the default store's one worker to the plain loop
        target = WORKER_TARGET if key == "faust_worker" else None
        s.rows.append(Row(name, entry["events_per_s"], "events/s", label, base, target))
        s.rows.append(Row(f"{name}: latency p99", entry.get("latency_p99_s"), "s", label,
                          plain.get("latency_p99_s")))  # fmt: skip
        sustained = entry.get("events_per_s_incl_read_back")
        if sustained is not None:
            # Until every command is also read back into the orders table: what a worker
            # sustains (the burst's own figure stops at the last command emitted).
            s.rows.append(Row(f"{name}, incl. read-back", sustained, "events/s",
                              label_sustained, base_sustained, target))  # fmt: skip
        if workers == 1 and one is None:
            one = entry["events_per_s"]
            one_sustained = sustained
        elif workers == 2 and one:
            s.rows.append(Row(f"{name} vs 1", entry["events_per_s"], "events/s",
                              "1 worker", one))  # fmt: skip
            if sustained is not None and one_sustained:
                s.rows.append(Row(f"{name} vs 1, incl. read-back", sustained, "events/s",
                                  "1 worker", one_sustained))  # fmt: skip
    other = d.get("faust_worker_other_store") or {}
    faust = d.get("faust_worker") or {}
    if d.get("store") and other.get("store") and faust.get("events_per_s"):
        store_target = STORE_TARGET if str(d["store"]).startswith("rocksdb") else None
        s.rows.append(Row(f"faust worker on {d['store']} vs {other['store']}",
                          faust["events_per_s"], "events/s", f"faust worker on {other['store']}",
                          other.get("events_per_s"), store_target))  # fmt: skip
    _durable_rows(s, d, label)
    _cpu_rows(s, d, label)
    for phase, entry in (d.get("faust_steady") or {}).items():
        rate = float(str(phase).split("_")[0]) if str(phase)[0].isdigit() else None
        name = f"faust worker, steady {str(phase).replace('_', ' ')}"
        s.rows.append(Row(name, entry.get("events_per_s"), "events/s", "offered", rate))
        s.rows.append(Row(f"{name}: latency p99", entry.get("latency_p99_s"), "s"))
    if base is not None:
        s.rows.append(Row(label, base, "events/s"))
    if plain.get("events_per_s_incl_read_back") is not None:
        s.rows.append(Row(label_sustained, plain["events_per_s_incl_read_back"], "events/s"))
        s.notes.append(
            "incl. read-back: up to the read-back of the last command, on both sides; the "
            "worker reads its commands back while it decides quotes, the plain loop only after "
            "it has fetched the whole backlog of quotes, so its figure to the last command "
            "leaves the read-back out and the row to the last command favours it"
        )
    s.notes.append(
        "the plain loop (`bench.quote_to_order.plain_loop`) runs the worker's Pipeline with the "
        "worker's configuration (`processors.agents.pipeline_config`: the review gate, the "
        "reconciliation ledger, the match index's partitioner) and every one of its tables, "
        "kept in dicts: what it leaves out is Faust and the tables' durability (no changelog, "
        "no store, no recovery)"
    )
    s.notes.append(
        "targets: one worker on the default store ≥ 0.8x the plain loop running the same "
        "Pipeline, and `rocksdb://` ≥ 0.85x `memory://`, both in the same run; the earlier "
        "15,000 events/s per worker is withdrawn (replaced by these ratios)"
    )
    if one is not None and any(r.measure.endswith(" vs 1") for r in s.rows):
        s.notes.append(SCALING_NOTE)
    if d.get("order"):
        s.notes.append(_order_note(d))
        s.notes += _host_caveat(d.get("faust_worker"), d.get("faust_worker_other_store"),
                                d.get("plain_confluent_loop"))  # fmt: skip
    warm = d.get("warm_up") or {}
    if warm.get("quotes"):
        s.notes.append(
            f"warm-up: a {warm['quotes']}-quote burst on a throw-away worker on "
            f"`{warm.get('store')}` before the measured runs, on the same broker, not measured "
            f"(its own rate: {warm.get('events_per_s')} events/s)"
        )
    if d.get("faust_two_workers_error"):
        s.notes.append(f"**{d['faust_two_workers_error']}**")
    if d.get("store"):
        s.notes.append(f"the workers' table store: `{d['store']}`")
    if d.get("note"):
        s.notes.append(str(d["note"]))
    return s


DURABLE_KEY = "plain_loop_with_changelogs"
DURABLE_LABEL = "plain loop with the worker's changelogs"


def _durable_rows(s: Section, d: Mapping[str, Any], label: str) -> None:
    """The plain loop whose tables write the worker's changelogs: beside the plain loop, what
    durable state costs; the workers beside it, what Faust costs (no target: a breakdown)."""
    durable = d.get(DURABLE_KEY) or {}
    rate = durable.get("events_per_s")
    if rate is None:
        return
    plain = d.get("plain_confluent_loop") or {}
    s.rows.append(Row(DURABLE_LABEL, rate, "events/s", label, plain.get("events_per_s")))
    workers = [(d.get("store"), d.get("faust_worker") or {}),
               ((d.get("faust_worker_other_store") or {}).get("store"),
                d.get("faust_worker_other_store") or {})]  # fmt: skip
    for store, entry in workers:
        if store and entry.get("events_per_s") is not None:
            s.rows.append(Row(f"faust worker on {store} vs {DURABLE_LABEL}",
                              entry["events_per_s"], "events/s", DURABLE_LABEL, rate))  # fmt: skip
    cpu = durable.get("cpu_us_per_quote")
    if cpu is not None:
        s.rows.append(Row(f"{DURABLE_LABEL}: CPU per quote", cpu, "µs", label,
                          plain.get("cpu_us_per_quote")))  # fmt: skip
        for store, entry in workers:
            if store and entry.get("cpu_us_per_quote") is not None:
                s.rows.append(Row(f"faust worker on {store} vs {DURABLE_LABEL}: CPU per quote",
                                  entry["cpu_us_per_quote"], "µs", DURABLE_LABEL, cpu))  # fmt: skip
    s.notes.append(
        f"{DURABLE_LABEL}: the plain loop whose dict tables write their changelogs with the "
        "worker's own code (each write encoded as Faust encodes it, one record per key and "
        "commit, the `seen` marks held until the outputs they guard are flushed, all of it "
        "durable before the offsets commit), as the worker's tables on `memory://` do; beside "
        "the plain loop it shows what the tables' durability costs, and the workers beside it "
        "what Faust costs (its consumer, streams, events, acks and table layers; on "
        "`rocksdb://` also the store); no target"
    )


def _cpu_rows(s: Section, d: Mapping[str, Any], label: str) -> None:
    """Each burst's process CPU per quote beside the plain loop's, and the two stores'; each
    burst's peak memory beside the plain loop's."""
    plain = d.get("plain_confluent_loop") or {}
    plain_cpu = plain.get("cpu_us_per_quote")
    faust = d.get("faust_worker") or {}
    other = d.get("faust_worker_other_store") or {}
    store = d.get("store") or "the default store"
    named = ((f"faust worker on {store}", faust), (f"faust worker on {other.get('store')}", other))
    for name, entry in named:
        if entry.get("cpu_us_per_quote") is not None:
            s.rows.append(Row(f"{name}: CPU per quote", entry["cpu_us_per_quote"], "µs",
                              label, plain_cpu))  # fmt: skip
    if faust.get("cpu_us_per_quote") is not None and other.get("cpu_us_per_quote") is not None:
        s.rows.append(Row(f"faust worker on {store} vs {other['store']}: CPU per quote",
                          faust["cpu_us_per_quote"], "µs", f"faust worker on {other['store']}",
                          other["cpu_us_per_quote"]))  # fmt: skip
    if plain_cpu is not None:
        s.rows.append(Row(f"{label}: CPU per quote", plain_cpu, "µs"))
    for name, entry in named:
        if entry.get("peak_rss_mb") is not None:
            s.rows.append(Row(f"{name}: peak memory (RSS)", entry["peak_rss_mb"], "MiB",
                              label, plain.get("peak_rss_mb")))  # fmt: skip


def _order_note(d: Mapping[str, Any]) -> str:
    """The order the compared bursts ran in, and each run's own figures."""
    store = d.get("store") or "default store"
    other = (d.get("faust_worker_other_store") or {}).get("store") or "other store"
    names = {"default": f"`{store}`", "other": f"`{other}`", "plain": "plain loop",
             "changelogs": "plain loop with changelogs"}  # fmt: skip
    entries = {"default": d.get("faust_worker") or {},
               "other": d.get("faust_worker_other_store") or {},
               "plain": d.get("plain_confluent_loop") or {},
               "changelogs": d.get(DURABLE_KEY) or {}}  # fmt: skip
    runs = []
    for variant, entry in entries.items():
        figures = [
            f"#{r['position']} {r.get('events_per_s') or 0:,}/s, "
            f"{r.get('cpu_us_per_quote') or 0:,} µs"
            + (f", {r['peak_rss_mb']:,} MiB" if r.get("peak_rss_mb") is not None else "")
            + _settled(r)
            for r in entry.get("runs") or []
        ]
        if figures:
            runs.append(f"{names[variant]}: {'; '.join(figures)}")
    order = ", ".join(names.get(v, v) for v in d["order"])
    return (
        f"the compared bursts ran {d.get('rounds')} times each, in this order: {order} (ABBA: each "
        "has the same mean position, so a host that drifts over the minutes of the run favours "
        "none); a row's events/s is all its runs' quotes over all their seconds, its latency and "
        "CPU per quote their median; CPU per quote: the measured process's CPU (/proc) from the "
        "first quote produced to the last command read back, over the quotes; peak memory: the "
        "process's peak resident memory (VmHWM) over its start-up and the burst; each run "
        f"(position, events/s, CPU per quote, peak memory): {' | '.join(runs)}" + _SETTLE_NOTE
    )


_SETTLE_NOTE = (
    f"; each run started once the machine's cores had been busy under "
    f"{QUIET_BUSY_SHARE:.0%} over a second (waiting at most {QUIET_MAX_S:g} s), so that no run "
    "pays for what the run before left behind (the broker cleaning its topics, a store "
    "flushing); after each run's figures, how long it waited, and the host's speed probe then "
    "(`bench.harness.speed_probe`: a fixed Python loop, best of 5; a moment's reading)"
)


def _settled(run: Mapping[str, Any]) -> str:
    """A run's wait for a quiet machine, as its list shows it (nothing if none is recorded)."""
    settled = run.get("settled")
    if not settled:
        return ""
    busy = f", {settled['busy_share']:.0%} busy" if settled.get("busy_share") is not None else ""
    probe = f", probe {settled['probe_ms']:.1f} ms" if settled.get("probe_ms") else ""
    return f" (waited {settled['settle_s']:g} s{busy}{probe})"


def _host_caveat(*entries: Mapping[str, Any] | None) -> list[str]:
    """The host-speed warning over every run of ``entries`` (combined bursts), if due."""
    probes = [((r.get("settled") or {}).get("probe_ms"))
              for e in entries if e for r in e.get("runs") or []]  # fmt: skip
    caveat = host_speed_caveat(probes)
    return [caveat] if caveat else []


def _rounds(figures: Any) -> str:
    return " / ".join(f"{x:.0f}" for x in figures or []) + " µs"


def inprocess_section(d: Mapping[str, Any]) -> Section:
    s = Section("inprocess", "Pipeline in process: cost per quote vs the baseline revision")
    label = f"baseline revision {d.get('baseline_rev')}"
    base, new = d["baseline_us_per_quote"], d["new_us_per_quote"]
    s.rows.append(Row("µs per quote record", new, "µs", label, base))
    s.rows.append(Row("quote records/s on one core", 1e6 / new, "quotes/s", label, 1e6 / base,
                      INPROCESS_TARGET))  # fmt: skip
    if "new_median_us_per_quote" in d:
        s.rows.append(Row("µs per quote record, median of the rounds",
                          d["new_median_us_per_quote"], "µs", label,
                          d["baseline_median_us_per_quote"]))  # fmt: skip
    s.rows.append(Row("output records per quote record", d.get("new_outputs_per_quote"), "",
                      label, d.get("baseline_outputs_per_quote")))  # fmt: skip
    counted = d.get("instructions_per_quote") or {}
    if "new" in counted:
        s.rows.append(Row("instructions per quote record (callgrind)", counted["new"], "",
                          label, counted["baseline"]))  # fmt: skip
    best = "best" if "new_median_us_per_quote" in d else "median"
    s.notes.append(
        f"{d.get('quotes'):,} accepted quotes of 2 to 5 lines over {d.get('accounts'):,} accounts "
        f"and {d.get('duplicates'):,} redeliveries; every command read back as the worker does; "
        f"dict tables, no broker; CPU time of the process; {d.get('repeats')} repeats after a "
        f"warm-up in each of {d.get('rounds')} rounds, the trees alternated; the ratio compares "
        f"each tree's {best} repeat (a slower repeat is the shared host's interference, as "
        "`timeit` advises), the medians are shown beside it; per round (median of its repeats), "
        f"baseline {_rounds(d.get('baseline_rounds'))}, this tree {_rounds(d.get('new_rounds'))}"
    )
    if "new" in counted:
        s.notes.append(
            f"instructions: counted by callgrind (valgrind) in {counted.get('repeats')} repeats "
            f"of {counted.get('quotes'):,} quotes over {counted.get('accounts'):,} accounts, "
            "only inside the measured quotes as the times are (start-up, warm-up and accounts "
            "left out), over their quote records; a count does not move "
            "with the host's speed or load, so it shows the change in the code's work that the "
            "times show only within the host's noise; instructions are not time (cache misses "
            "and branches cost cycles a count does not show): the target is judged on the times"
        )
    elif counted.get("skipped"):
        s.notes.append(f"instructions per quote record not counted: {counted['skipped']}")
    return s


def quix_section(d: Mapping[str, Any]) -> Section:
    s = Section("quix", "Quote → order: Faust worker vs Quix Streams doing the same work")
    if d.get("status") != "ok":
        s.status = f"not run: {d.get('reason', 'unknown reason')}"
        return s
    q, plain = d["quix_streams"], d["plain_confluent_loop"]
    faust = d.get("faust_worker")
    quix = f"Quix Streams {d.get('quixstreams', '')}".strip()
    if d.get("faust_error"):
        s.rows.append(Row("Faust worker, 1 process", None, "events/s", quix, q["events_per_s"],
                          FAUST_VS_QUIX_TARGET))  # fmt: skip
        s.notes.append(f"**the Faust worker's run failed**: {d['faust_error']}")
    if faust:
        store = f" on {d['store']}" if d.get("store") else ""
        s.rows.append(Row(f"Faust worker{store}, 1 process", faust["events_per_s"], "events/s",
                          quix, q["events_per_s"], FAUST_VS_QUIX_TARGET))  # fmt: skip
        s.rows.append(Row("Faust worker, incl. read-back of its commands",
                          faust.get("events_per_s_incl_read_back"), "events/s", quix,
                          q["events_per_s"]))  # fmt: skip
        s.rows.append(Row("Faust worker: latency p99", faust.get("latency_p99_s"), "s", quix,
                          q.get("latency_p99_s")))  # fmt: skip
        if faust.get("cpu_us_per_quote") and q.get("cpu_us_per_quote"):
            s.rows.append(Row("Faust worker: CPU per quote", faust["cpu_us_per_quote"], "µs",
                              quix, q["cpu_us_per_quote"]))  # fmt: skip
    s.rows.append(Row(quix, q["events_per_s"], "events/s", "plain confluent-kafka loop, same "
                      "Pipeline", plain["events_per_s"]))  # fmt: skip
    if q.get("audit_records") is not None:
        s.rows.append(Row(f"{quix}: audit records", q["audit_records"], "records",
                          "input records (one decision each)",
                          (d.get("quotes") or 0) + (d.get("accounts") or 0)))  # fmt: skip
    if d.get("quix_does"):
        does = " ".join(f"({n}) {what};" for n, what in enumerate(d["quix_does"], 1))
        s.notes.append(f"the Quix app does, per event: {does.rstrip(';')}")
    for omitted in d.get("quix_omits", []):
        s.notes.append(f"the Quix app omits {omitted}")
    s.notes.append(
        f"same broker, same input; {d.get('rounds')} runs of each in this order: "
        f"{', '.join(d.get('order', []))} (ABBA: each has the same mean position, so a host "
        "that drifts over the minutes of the run favours none), after a warm-up burst on a "
        "throw-away Faust worker; a row's events/s is all its runs' quotes over all their "
        "seconds, its latency and CPU per quote their median; events/s = quotes / (last "
        "command's append time - first quote's append time); CPU per quote: the process's "
        "CPU (/proc) from the first quote produced to the last output counted"
    )
    runs = [(name, r) for name, k in (("Faust", faust), ("Quix", q), ("plain loop", plain))
            if k for r in k.get("runs", [])]  # fmt: skip
    if runs:
        listed = ", ".join(
            f"#{r['position']} {name} {r['events_per_s']:,}/s{_settled(r)}"
            for name, r in sorted(runs, key=lambda x: x[1]["position"])
            if r.get("events_per_s") is not None
        )
        s.notes.append(f"each run: {listed}{_SETTLE_NOTE}")
        s.notes += _host_caveat(faust, q, plain)
    s.notes += [str(n) for n in d.get("notes", [])]
    return s


def recovery_section(d: Mapping[str, Any]) -> Section:
    s = Section("recovery", "Worker restart on `rocksdb://`: recovery from stored offsets")
    base = "same restart, offsets removed (replays from the start)"
    s.rows.append(Row("restart until consuming", d["ready_s"], "s", base, d["ready_s_from_start"]))
    s.rows.append(
        Row(
            "worker CPU until consuming", d["worker_cpu_s"], "s", base, d["worker_cpu_s_from_start"]
        )
    )
    s.notes.append(
        f"state of {d['quotes']:,} quotes over {d['accounts']:,} accounts on {d['partitions']} "
        f"partitions: {d['changelog_records']:,} changelog records; median of {d['restarts']} "
        "restarts each, alternated, same data directory and broker"
    )
    s.notes.append(
        "both include the process start and the consumer group join; the difference is the "
        "changelog replay, which grows with the state (a week of dedup ids at 100 events/s is "
        "about 60 million records)"
    )
    return s


def sweep_section(d: Mapping[str, Any]) -> Section:
    s = Section("sweep", "Dedup sweep on RocksDB: the time index vs a walk of every id")
    for r in d["by_size"]:
        s.rows.append(
            Row(
                f"{r['ids']:,} ids, {r['due']:,} due: find them",
                r["index_ms"],
                "ms",
                "walk every id (decode, compare)",
                r["walk_ms"],
            )
        )
    s.notes.append(
        "one partition's RocksDB databases (rocksdict, JSON keys and values as Faust stores "
        f"them); best of {d.get('repeat')}; deleting what is due costs the same either way and "
        "is not timed; Faust's table layer is left out of both"
    )
    s.notes.append(
        "the walk runs on the worker's event loop once per sweep interval: at ~3 µs per id, a "
        "week of ids at 100 events/s (about 60 million) would take minutes each time"
    )
    return s
