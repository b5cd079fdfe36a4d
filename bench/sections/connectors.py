"""RESULTS.md sections of the codecs and the adapters: serde, webhooks, cdc."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.sections.targets import (
    CDC_TARGET,
    INGEST_RATIO_TARGET,
    INGEST_TARGET,
    SERDE_TARGET,
)
from bench.table import Row, Section

__all__ = ["cdc_section", "serde_section", "webhooks_section"]


def serde_section(d: Mapping[str, Any]) -> Section:
    s = Section("serde", f"Serde: Order encode/decode ({d.get('contract', '?')})")
    base = {r["case"]: r["events_per_s"] for r in d["results"] if r["case"].startswith("raw")}
    for r in d["results"]:
        if r["case"].startswith("raw"):
            continue
        kind = "write" if "write" in r["case"] or "encode" in r["case"] else "read"
        label = f"raw fastavro {kind} (dict)"
        s.rows.append(
            Row(r["case"], r["events_per_s"], "events/s", label, base.get(label), SERDE_TARGET)
        )
    s.notes.append(
        f"best of {d.get('repeat')} x {d.get('events')} events, {d.get('record_bytes')} B body"
    )
    return s


def webhooks_section(d: Mapping[str, Any]) -> Section:
    s = Section("webhooks", "Webhook ingest: signed, acks=all vs bare endpoint (wrk)")
    signed, bare, landed = d["signed"], d["bare"], d["landed"]
    label = "bare no-op endpoint"
    s.rows.append(Row("signed Standard-Webhooks ingest, acks=all", signed["req_per_s"], "req/s",
                      label, bare["req_per_s"], INGEST_RATIO_TARGET))  # fmt: skip
    s.rows.append(Row("signed ingest, acks=all, one receiver process", signed["req_per_s"],
                      "req/s", "", None, INGEST_TARGET))  # fmt: skip
    for q in ("p50", "p99"):
        s.rows.append(Row(f"signed ingest: latency {q}", signed[f"latency_{q}_s"], "s", label,
                          bare[f"latency_{q}_s"]))  # fmt: skip
    for name, run in (("signed", signed), ("bare", bare)):
        cpu = run["cpu_cores"]
        loop = cpu["server_event_loop_thread"]
        s.rows.append(Row(f"{name} run: load generator (wrk) CPU", cpu["wrk"], "cores",
                          "receiver's event-loop thread", loop))  # fmt: skip
    s.rows.append(Row("records landed on the raw topic", landed["records"], "records",
                      "2xx answers counted by wrk", landed["ok_2xx"]))  # fmt: skip
    cpu = signed["cpu_cores"]
    broker = "" if cpu.get("broker") is None else f", broker {cpu['broker']:.2f}"
    s.notes.append(
        f"signed run, CPU in cores: receiver process {cpu['server_process']:.2f} (its event "
        f"loop {cpu['server_event_loop_thread']:.2f}, the rest librdkafka and the poll thread), "
        f"wrk {cpu['wrk']:.2f}{broker}; {d.get('cpus')} cores shared by all"
    )
    for name, run in (("signed", signed), ("bare", bare)):
        errors = {k: v for k, v in run["socket_errors"].items() if v}
        if run["non_2xx"] or errors:
            s.notes.append(f"{name} run: **{run['non_2xx']} non-2xx answers**, socket errors "
                           f"{errors or 'none'}")  # fmt: skip
    if signed["ids_reused"]:  # the bare endpoint ignores ids: only the signed run must not
        s.notes.append(f"**{signed['ids_reused']:,} signed requests reused a webhook id** "
                       "(more were sent than pre-signed: raise `--id-rate`)")  # fmt: skip
    verdict = "every 2xx landed" if landed["every_2xx_landed"] else "**2xx answers not landed**"
    s.notes.append(
        f"{verdict}: {landed['records']:,} records for {landed['ok_2xx']:,} 2xx answers and "
        f"{landed['sent']:,} requests sent (a request in flight when wrk stops may land "
        "unanswered)"
    )
    slices = d.get("slices")
    cut = (
        f" in {slices} alternated slices (signed/bare by slice: "
        + ", ".join(f"{r:.2f}x" for r in d.get("slice_ratios", []))
        + "; latency: the median of the slices' percentiles)"
        if slices
        else ""
    )
    s.notes.append(
        f"{d.get('seconds')} s per endpoint{cut} after a warm-up "
        f"({_warm_up(d.get('warm_up_s'))}), same server, same run; "
        f"{d.get('generator')}; broker: {d.get('broker')}"
    )
    return s


def cdc_section(d: Mapping[str, Any]) -> Section:
    s = Section("cdc", f"CDC: Debezium JSON → canonical Avro ({d.get('rows')} rows)")
    s.rows.append(
        Row(
            "CDC mapping stage",
            d["mapping_events_per_s"],
            "events/s",
            "hand-rolled consume, json decode, re-produce",
            d["baseline_events_per_s"],
            CDC_TARGET,
        )
    )
    s.rows.append(Row("Postgres snapshot → raw topic", d.get("snapshot_rows_per_s"), "rows/s"))
    return s


def _warm_up(warm: Any) -> str:
    if not isinstance(warm, Mapping):
        return "short"
    return ", ".join(f"{k} {v} s" for k, v in warm.items()) + "; the signed one warms the broker"
