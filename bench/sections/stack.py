"""RESULTS.md sections of the whole stack: the pipeline, its capacity search, the broker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.harness import host_speed_caveat
from bench.sections.targets import (
    CAPACITY_RATIO_TARGET,
    CAPACITY_TARGET,
    HANDOFF_TARGET,
    SCALING_NOTE,
)
from bench.table import Row, Section, fmt

__all__ = ["broker_section", "capacity_section", "pipeline_section"]


def pipeline_section(d: Mapping[str, Any]) -> Section:
    s = Section("pipeline", "Full pipeline: `interlock up --simulate RATE` by offered load")
    best: dict[int, float] = {}
    saturated: dict[int, bool] = {}
    for r in d.get("runs", []):
        w, rate = r["workers"], r["offered_per_s"]
        head = f"{w} worker{'s' if w > 1 else ''} @ {rate:,.0f}/s"
        if r.get("error"):
            s.notes.append(f"{head}: failed: {r['error']}")
            continue
        achieved = r.get("sent_per_s")
        if achieved is None:
            s.notes.append(f"{head}: the simulator did not finish within `up`'s time limit "
                           "(its webhook queue backed up): events sent unknown")  # fmt: skip
        s.rows.append(Row(f"{head}: simulator sent", achieved, "events/s", "offered", rate))
        s.rows.append(Row(f"{head}: worker consumed", r.get("worker_consumed_per_s"),
                          "events/s", "simulator sent", achieved))  # fmt: skip
        s.rows.append(Row(f"{head}: all services consumed", r.get("consumed_per_s"), "events/s"))
        orders = r.get("orders")
        if orders:
            s.rows.append(Row(f"{head}: ERP orders created", orders["created"], "orders",
                              "expected by the simulated CRM", orders["expected"]))  # fmt: skip
        lat = r.get("latency_all") or {}
        target = HANDOFF_TARGET if rate == 1000 else None
        s.rows.append(Row(f"{head}: handoff p50", lat.get("p50"), "s"))
        s.rows.append(Row(f"{head}: handoff p99", lat.get("p99"), "s", "", None, target))
        grew = {True: "grew", False: "stable", None: "trend unknown"}[r.get("lag_grew")]
        s.notes.append(f"{head}: lag at end {r.get('lag_end', 0):,.0f} msgs ({grew}); "
                       f"p99 by flow: {_flows(r.get('latency') or {})}")  # fmt: skip
        consumed = r.get("worker_consumed_per_s") or 0.0
        best[w] = max(best.get(w, 0.0), consumed)
        behind = bool(r.get("lag_grew")) or (achieved is not None and consumed < 0.9 * achieved)
        saturated[w] = saturated.get(w, False) or behind
    if 1 in best and 2 in best:
        row = Row("2 workers vs 1: best worker consumed/s", best[2], "events/s", "1 worker",
                  best[1])  # fmt: skip
        s.rows.append(row)
        s.notes.append(SCALING_NOTE)
        if not saturated.get(1):
            s.notes.append("one worker kept up at every offered load: the 2-vs-1 ratio shows "
                           "the offered load, not the workers' capacity")  # fmt: skip
    if any(r.get("orders") for r in d.get("runs", [])):
        s.notes.append(
            "ERP orders created: the quotes the simulated CRM expects an order for that got one "
            "by the end of the drain (the simulator's `orders_complete` invariant, from its run "
            "file once the stack stopped; quotes a person holds count as missing, since the "
            "stopped stack's cases are not read)"
        )
    if d.get("store"):
        s.notes.append(f"the workers' table store: `{d['store']}`")
    s.notes.append("all services, the broker and the simulator share the machine's cores: "
                   "a second worker competes with them for CPU")  # fmt: skip
    s.notes.append(f"each load for {d.get('duration_s')} s; rates from /metrics counters over "
                   "the steady window; latency quantiles from the histogram buckets")  # fmt: skip
    return s


def capacity_section(d: Mapping[str, Any]) -> Section:
    s = Section("capacity", "Capacity of the stack: `up --simulate` on Kafka and on Tansu")
    by = {x["broker"]: x for x in d.get("searches", [])}
    names = {"kafka": "Apache Kafka", "tansu": "Tansu"}

    def best(broker: str) -> float | None:
        found = by.get(broker)
        if not found or not found.get("runs"):
            return None
        return found.get("best_sent_per_s") or 0.0  # nothing tried kept up

    kafka, tansu = best("kafka"), best("tansu")
    head = "highest rate kept up (handoff p99 < 1 s, lag stable)"
    if "kafka" in by:
        s.rows.append(Row(f"Apache Kafka: {head}", kafka, "actions/s", "", None,
                          CAPACITY_TARGET))  # fmt: skip
    if "kafka" in by or "tansu" in by:
        s.rows.append(Row(f"Apache Kafka vs Tansu: {head}", kafka, "actions/s",
                          "Tansu, same search", tansu, CAPACITY_RATIO_TARGET))  # fmt: skip
    chosen = {b: _capacity_run(x) for b, x in by.items()}
    label = {b: f"{names.get(b, b)} @ {r['offered_per_s']:,.0f}/s" for b, r in chosen.items() if r}
    services = sorted({n for r in chosen.values() if r for n in r.get("cpu", {})})
    k, t = chosen.get("kafka"), chosen.get("tansu")
    for name in services:
        value = ((k or {}).get("cpu") or {}).get(name, {}).get("us_per_action")
        base = ((t or {}).get("cpu") or {}).get(name, {}).get("us_per_action")
        s.rows.append(Row(f"CPU per action: {name} ({label.get('kafka', 'Kafka: no run')})",
                          value, "µs", label.get("tansu", ""), base))  # fmt: skip
    for broker, found in by.items():
        for r in found.get("runs", []):
            run = f"{names.get(broker, broker)} @ {r['offered_per_s']:,.0f}/s"
            if r.get("error"):
                s.notes.append(f"{run}: {r.get('verdict') or r['error']}")
                continue
            s.rows.append(Row(f"{run}: actions sent", r.get("sent_per_s"), "actions/s",
                              "offered", r["offered_per_s"]))  # fmt: skip
            s.rows.append(Row(f"{run}: handoff p99", (r.get("handoff") or {}).get("p99"), "s"))
            verdict = "**kept up**" if r.get("passed") else f"did not keep up ({r.get('verdict')})"
            probe = f"; speed probe {r['probe_ms']:.1f} ms" if r.get("probe_ms") else ""
            waited = r.get("settled") or {}
            if waited.get("settle_s") is not None:
                probe = (f"; started after {waited['settle_s']:g} s, once the cores were "
                         f"{waited.get('busy_share', 0):.0%} busy{probe}")  # fmt: skip
            s.notes.append(f"{run}: {verdict}; {_lag(r)}; {_cores(r)}; {_warming(r)}{probe}")
        bracket = found.get("lowest_fail_per_s")
        top = found.get("best_offered_per_s")
        if top is None and found.get("runs"):
            low = min(r["offered_per_s"] for r in found["runs"])
            floor = found.get("floor_per_s")
            where = ", the search's floor" if floor is not None and low <= floor else ""
            s.notes.append(f"{names.get(broker, broker)}: no rate tried kept up "
                           f"(lowest {low:,.0f}/s{where})")  # fmt: skip
        elif top is not None:
            above = f", {bracket:,.0f}/s did not" if bracket else ", no higher rate was tried"
            s.notes.append(f"{names.get(broker, broker)}: {top:,.0f}/s kept up{above}: the "
                           "capacity lies in between (the search's resolution)")  # fmt: skip
    s.notes += _capacity_caveats(by)
    warmup, window = d.get("warmup_s"), d.get("window_s")
    timing = (f"{warmup:g} s of warm-up, then a {window:g} s window"
              if warmup is not None and window is not None
              else f"{d.get('duration_s', 0):g} s of load, the window from a few seconds after "
                   "`ready`")  # fmt: skip
    s.notes.append(
        f"each run: `interlock up --simulate RATE` on a fresh embedded broker, {timing} "
        "(the same on both brokers); a rate is kept up when the simulator sent ≥ "
        f"{d.get('sent_share', 0.95):.0%} of it, the handoff p99 of the actions handed off "
        "after the window's start (the drain included) is under 1 s and no backlog built up"
    )
    s.notes.append(
        "why a long warm-up rather than one broker for every run: a fresh JVM broker compiles "
        "as it serves and costs several times its steady CPU in its first minute, so a short "
        "run charges Kafka for its start-up, not its work; one warmed broker shared by the "
        "runs would carry each run's topics, committed offsets and the workers' changelogs "
        "into the next (the consumer group names are fixed, and the same seed replays the same "
        "event ids), and Tansu, which keeps every record and lists every stored batch on a "
        "fetch, would get dearer with each run; so every run starts clean and the window "
        "begins after the warm-up; the broker's cores in each slice from `ready` are listed "
        "per run, to show whether it had settled"
    )
    s.notes.append(
        "backlog: the lag exporter (sampling every second in these runs) reports "
        "committed-offset lag, which for a stage that commits every few seconds is a sawtooth "
        "even when it is caught up, and a line fitted through a short window of it rises or "
        "falls with where the teeth fall; so each consumer group's floor (its lowest lag in "
        "the window's first half and in its second half) is compared: a backlog lifts the "
        "floor, a commit returns a caught-up group to it; it counts when the floors rose, "
        "summed over groups, by more than one second of the messages all stages consumed "
        "(`fit`: what the fitted line said, for comparison)"
    )
    floor = d.get("floor_per_s")
    s.notes.append(
        f"the search: from {d.get('start_per_s', 0):,.0f}/s, doubling while a rate is kept up, "
        "halving while none is"
        + (f" (down to {floor:,.0f}/s)" if floor else "")
        + ", then bisecting between the highest kept up and the lowest not; the brokers' "
        "searches take turns, each next run going to the broker whose bracket (lowest fail over "
        "highest pass) is widest (on a tie, such as while both are still doubling, to the one "
        "with fewer runs), so that both are known to the same resolution when the budget "
        f"({d.get('budget_s', 0):,.0f} s) is spent; no run starts that would not fit in it"
        "; a run is stopped 10 s after its drain, and fails if the groups' lag has not come "
        "back down by then; Tansu's first rate is Kafka's highest rate kept up divided by the "
        "ratio target, so that its first run tells on which side of the target the ratio falls"
    )
    runs = [r for x in by.values() for r in x.get("runs", [])]
    stolen = any("stolen" in (r.get("cores") or {}) for r in runs)
    s.notes.append(
        "CPU per action: each service's CPU seconds (all its processes and threads, and the "
        "children they have waited for, such as the simulator's snapshot writers; /proc) over "
        "the window, divided by the actions the simulator sent in it; `up` is the supervisor "
        "with its live view, `simulate` the simulated CRM and ERP, `broker` the embedded broker; "
        "cores: the same CPU per second of the window, beside the rest of the machine (other "
        "work on the machine) and idle"
        + (
            ", and stolen (time the virtual machine's host ran something else while this "
            "machine had work, /proc/stat)"
            if stolen
            else ""
        )
    )
    return s


def _capacity_run(search: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The run that shows a broker's cost: its highest rate kept up, else its first measured."""
    runs = [r for r in search.get("runs", []) if not r.get("error")]
    kept = [r for r in runs if r.get("passed")]
    if kept:
        return max(kept, key=lambda r: r["offered_per_s"])
    return runs[0] if runs else None


def _lag(r: Mapping[str, Any]) -> str:
    rise, limit = r.get("lag_floor_rise"), r.get("lag_backlog_limit")
    fit = {True: "rose", False: "flat", None: "unknown"}[r.get("lag_fit_rose")]
    if rise is None or limit is None:
        return f"lag at end {r.get('lag_end') or 0:,.0f} msgs"
    return (f"lag floor {rise:+,.0f} msgs (a backlog past {limit:,.0f}), at end "
            f"{r.get('lag_end') or 0:,.0f} msgs, fit {fit}")  # fmt: skip


def _capacity_caveats(by: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """What bounds the comparison: the brackets' width, and other work on the machine."""
    notes = []
    k, t = by.get("kafka", {}), by.get("tansu", {})
    k_top, t_top = k.get("best_offered_per_s"), t.get("best_offered_per_s")
    k_fail, t_fail = k.get("lowest_fail_per_s"), t.get("lowest_fail_per_s")
    if k_top and t_top and k_fail and t_fail:
        notes.append(f"the ratio is of the highest rates kept up; from the two brackets the "
                     f"capacities' ratio lies between {k_top / t_fail:.2f}x (Kafka's highest "
                     f"pass over Tansu's lowest fail) and {k_fail / t_top:.2f}x")  # fmt: skip
    rest = _window_cores(by, "rest_of_machine")
    if rest and max(rest) >= 0.1:
        notes.append(f"**other work shared the machine**: {min(rest):.2f} to {max(rest):.2f} "
                     "cores outside the stack in the runs' windows, unevenly between runs and "
                     "brokers; the rates found are lower than on an idle machine, and the "
                     "comparison is only as fair as that sharing")  # fmt: skip
    stolen = _window_cores(by, "stolen")
    if stolen and max(stolen) >= 0.1:
        notes.append(f"**the host took cores from this machine**: {min(stolen):.2f} to "
                     f"{max(stolen):.2f} cores stolen (steal time) in the runs' windows; the "
                     "stack ran on what was left, so the rates found are lower than on a "
                     "host with room, and unevenly between runs and brokers")  # fmt: skip
    speed = host_speed_caveat([r.get("probe_ms") for x in by.values() for r in x.get("runs", [])])
    if speed:
        notes.append(speed)
    return notes


def _window_cores(by: Mapping[str, Mapping[str, Any]], key: str) -> list[float]:
    """``cores[key]`` of every measured run of every broker (0 where it was not recorded)."""
    return [(r.get("cores") or {}).get(key) or 0.0
            for x in by.values() for r in x.get("runs", []) if not r.get("error")]  # fmt: skip


def _warming(r: Mapping[str, Any]) -> str:
    slices = r.get("broker_cores_by_slice") or []
    if not slices:
        return "broker cores by slice: not read"
    step = r.get("broker_slice_s") or slices[0]["to_s"] - slices[0]["from_s"]
    return f"broker cores by {step:g} s from `ready`: " + ", ".join(
        f"{x['cores']:.2f}" for x in slices
    )


def _cores(r: Mapping[str, Any]) -> str:
    parts = [f"{n} {v['cores']:.2f}" for n, v in sorted((r.get("cpu") or {}).items(),
                                                         key=lambda x: -x[1]["cores"])]  # fmt: skip
    cores = r.get("cores") or {}
    parts += [f"rest of the machine {cores.get('rest_of_machine', 0):.2f}",
              f"idle {cores.get('idle', 0):.2f}"]  # fmt: skip
    if cores.get("stolen") is not None:
        parts.append(f"stolen by the host {cores['stolen']:.2f}")
    return "cores: " + ", ".join(parts)


def broker_section(d: Mapping[str, Any]) -> Section:
    s = Section("broker", "Embedded broker: a fetch's cost by batches stored in the partition")
    sizes = d["by_size"]
    first = sizes[0]
    label = f"same, {first['batches']:,} batches stored"
    for r in sizes:
        s.rows.append(
            Row(
                f"produce 1 + fetch it, {r['batches']:,} single-record batches stored: broker CPU",
                r["broker_cpu_us_per_round"],
                "µs",
                label,
                first["broker_cpu_us_per_round"],
            )
        )
    b = d["batched"]
    s.rows.append(
        Row(
            f"the same, {b['records']:,} records stored as {b['batches']:,} batches of "
            f"{b['records_per_batch']}: broker CPU",
            b["broker_cpu_us_per_round"],
            "µs",
            f"{sizes[-1]['records']:,} records as single-record batches",
            sizes[-1]["broker_cpu_us_per_round"],
        )
    )
    for r in sizes:
        s.rows.append(
            Row(
                f"ListOffsets (latest), {r['batches']:,} batches stored: broker CPU",
                r["broker_cpu_us_per_list_offsets"],
                "µs",
                label,
                first["broker_cpu_us_per_list_offsets"],
            )
        )
    slope = d.get("broker_cpu_us_per_stored_batch")
    if slope is not None:
        s.notes.append(
            f"each stored batch adds {slope:.2f} µs of broker CPU to every fetch that returns "
            "records from its partition (Tansu's in-memory engine lists every batch object of "
            "the partition per fetch and keeps them all): the broker's cost per event grows "
            "with the run"
        )
    s.notes.append(
        f"{d.get('rounds')} rounds per size; a round produces one record (acks=all, no linger) "
        "and a consumer at the end of the partition fetches it; broker CPU from /proc"
    )
    s.notes.append("no target: this measures the embedded broker, not Interlock")
    return s


def _flows(latency: Mapping[str, Mapping[str, float | None]]) -> str:
    parts = [f"{f} {fmt(v.get('p99'), 's')}" for f, v in sorted(latency.items())]
    return ", ".join(parts) or "none (no handoff latency sample recorded by the sinks)"
