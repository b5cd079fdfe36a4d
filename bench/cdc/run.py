"""CDC benchmark: Postgres snapshot throughput, and Debezium JSON -> canonical Avro mapping
throughput through the broker beside a hand-rolled decode-and-reproduce loop, in one run.

Usage: .venv/bin/python -m bench.cdc.run [--rows 100000]
Writes bench/results/cdc.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client import CollectorRegistry

from bench.harness import write_result
from connectors.cdc import CdcMapper, EnvelopeDecoder, load_mapping_dir
from connectors.cdc.consumer import CdcStage
from connectors.cdc.postgres import PostgresSource, PostgresSourceConfig
from contracts.models import EVENT_MODELS
from contracts.serde import make_serializer
from interlock.broker import embedded_broker
from interlock.deadletter import DeadLetterWriter
from interlock.instruments import Instruments
from interlock.kafka import make_consumer, make_producer
from interlock.settings import Settings
from tests.connectors.cdc.pgserver import create_database, throwaway_postgres

ROOT = Path(__file__).resolve().parents[2]


def _topics(admin: AdminClient, names: list[str]) -> None:
    for f in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        f.result(30)


def _baseline(settings: Settings, raw: str, out: str, n: int) -> float:
    """Hand-rolled: consume, json-decode, re-produce the same bytes, flush per batch."""
    consumer = make_consumer(settings, f"base-{uuid.uuid4().hex[:6]}")
    consumer.subscribe([raw])
    producer = make_producer(settings, **{"linger.ms": 20})
    loads = json.loads
    done, start = 0, None
    while done < n:
        msgs = consumer.consume(5000, 0.5)
        if not msgs:
            continue
        start = start or time.perf_counter()
        for m in msgs:
            loads(m.value())
            producer.produce(out, m.value(), m.key())
        producer.flush(30)
        consumer.store_offsets(msgs[-1])
        done += len(msgs)
    elapsed = time.perf_counter() - (start or time.perf_counter())
    consumer.close()
    return done / elapsed


PRODUCER_TUNING = {
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "queue.buffering.max.messages": 500_000,
}
"""The stage's producer settings (as ``interlock cdc`` configures them)."""


def _stage(settings: Settings, raw: str, prefix: str) -> tuple[CdcStage, Any]:
    """The CDC stage as ``interlock cdc`` builds it, subscribed to ``raw``; and its consumer."""
    consumer = make_consumer(settings, f"cdc-{uuid.uuid4().hex[:6]}")
    consumer.subscribe([raw])
    producer = make_producer(settings, **PRODUCER_TUNING)
    stage = CdcStage(
        consumer, producer, CdcMapper(load_mapping_dir(), topic_for=lambda t: prefix + t),
        EnvelopeDecoder(), {e: make_serializer(e) for e in EVENT_MODELS},
        DeadLetterWriter(producer, "cdc"), Instruments(CollectorRegistry(), "cdc"),
    )  # fmt: skip
    return stage, consumer


def _mapping(settings: Settings, raw: str, prefix: str, n: int) -> float:
    """The CDC stage, pipelined; timed until every event is acknowledged and offsets stored."""
    stage, consumer = _stage(settings, raw, prefix)
    done, start = 0, None
    while done < n:
        result = stage.run_once()
        if result and start is None:
            start = time.perf_counter()
        done += sum(result.values())
    stage.drain()
    elapsed = time.perf_counter() - (start or time.perf_counter())
    consumer.close()
    return done / elapsed


def _in_process(settings: Settings, raw: str, prefix: str, n: int) -> dict[str, float]:
    """Microseconds per event of decoding and of mapping + encoding the same records, without
    the broker (best of three passes in batches of 5,000): steadier than the throughput on a
    shared machine, so the figure to compare changes by."""
    stage, consumer = _stage(settings, raw, prefix)
    values: list[bytes] = []
    while len(values) < n:
        values += [m.value() for m in consumer.consume(5000, 0.5) if m.error() is None]
    consumer.close()
    decode, encode = EnvelopeDecoder().decode, stage._encode
    now = datetime.now(UTC)
    best = {"decode_us_per_event": float("inf"), "encode_us_per_event": float("inf")}
    for _ in range(3):
        spent = [0.0, 0.0]
        for i in range(0, len(values), 5000):
            t0 = time.perf_counter()
            changes = [decode(v, raw) for v in values[i : i + 5000]]
            t1 = time.perf_counter()
            for change in changes:
                encode(change, now)  # the first teaches the writer its header
            spent[0] += t1 - t0
            spent[1] += time.perf_counter() - t1
        best["decode_us_per_event"] = min(best["decode_us_per_event"], spent[0] * 1e6 / n)
        best["encode_us_per_event"] = min(best["encode_us_per_event"], spent[1] * 1e6 / n)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    n = args.rows
    results: dict[str, Any] = {"rows": n}
    with embedded_broker(Settings(_env_file=None)) as broker, throwaway_postgres() as admin_dsn:
        settings = Settings(_env_file=None).with_bootstrap(broker.bootstrap_servers)  # type: ignore[call-arg]
        admin = AdminClient(settings.kafka.librdkafka())
        prefix = f"b{uuid.uuid4().hex[:6]}."
        raw = f"{prefix}raw.erp.customers"
        _topics(admin, [raw, f"{prefix}canonical.account.v1", f"{prefix}copy", f"dlq.{raw}"])
        dsn = create_database(
            admin_dsn, "bench", (ROOT / "connectors/sql/erp_schema.sql").read_text()
        )
        with psycopg.connect(dsn, autocommit=True) as db:
            db.execute(
                "INSERT INTO customers (customer_number, name, tax_id, credit_limit_minor, "
                "web_domain, billing_line1, billing_city, billing_postal_code, billing_country) "
                "SELECT 'C' || g, 'Customer ' || g, 'DE' || g, g * 100, 'c' || g || '.example', "
                "'Street ' || g, 'Berlin', '10115', 'DE' FROM generate_series(1, %s) g",
                (n,),
            )
        source = PostgresSource(
            PostgresSourceConfig(dsn=dsn, tables=["customers"], slot="bench",
                                 topic_prefix=f"{prefix}raw.erp."),
            make_producer(settings, **{"linger.ms": 20}),
        )  # fmt: skip
        source.prepare()
        t0 = time.perf_counter()
        rows = source.snapshot()
        results["snapshot_rows_per_s"] = rows / (time.perf_counter() - t0)
        source.drop_slot()
        source.close()
        results["baseline_events_per_s"] = _baseline(settings, raw, f"{prefix}copy", n)
        results["mapping_events_per_s"] = _mapping(settings, raw, prefix, n)
        results.update(_in_process(settings, raw, prefix, n))
    base = results["baseline_events_per_s"]
    results["mapping_vs_baseline"] = (
        results["mapping_events_per_s"] / results["baseline_events_per_s"]
    )
    out = ROOT / "bench/results/cdc.json"
    write_result(out, results)
    print(f"| stage ({n} rows) | events/s | ratio to baseline |\n|---|---:|---:|")
    print(f"| Postgres snapshot -> raw topic | {results['snapshot_rows_per_s']:,.0f} | |")
    print(f"| baseline: consume, json decode, re-produce | {base:,.0f} | 1.00 |")
    print(
        f"| CDC mapping: Debezium JSON -> canonical Avro | {results['mapping_events_per_s']:,.0f} "
        f"| {results['mapping_vs_baseline']:.2f} |"
    )
    print(
        f"\nIn-process, per event: decode {results['decode_us_per_event']:.1f} us, "
        f"map + encode {results['encode_us_per_event']:.1f} us"
    )


if __name__ == "__main__":
    main()
