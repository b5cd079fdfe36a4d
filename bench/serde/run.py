"""Benchmark event encode/decode of the Order contract against raw fastavro in the same run.

Rows: raw fastavro (the baseline), the generated codec of ``contracts.codec`` on the same dict
and the same bytes, and Interlock's serializers (which use that codec when writer == reader).

Interlock's serde adds framing, model conversion and error wrapping on top of fastavro's
schemaless writer/reader; the target is at least 0.7x raw fastavro's events/s. Results go to
``bench/results/serde.json`` and a Markdown table on stdout.

    python -m bench.serde.run [--events N] [--repeat R]
"""

from __future__ import annotations

import argparse
import io
import platform
import sys
import timeit
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import fastavro  # noqa: E402
from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402
from fastavro import schemaless_reader, schemaless_writer  # noqa: E402

from bench.harness import write_result  # noqa: E402
from contracts import (  # noqa: E402
    Address,
    Order,
    OrderEvent,
    OrderLine,
    Source,
    default_registry,
    deterministic_event_id,
    make_deserializer,
    make_serializer,
    to_avro,
)
from contracts.codec import compile_codec  # noqa: E402

TARGET = 0.7
RESULTS = ROOT / "bench" / "results" / "serde.json"


def order_event(lines: int = 5) -> OrderEvent:
    """A realistic order status change: addresses, money, dates and ``lines`` order lines."""
    at = datetime(2025, 3, 14, 15, 9, 26, 535000, tzinfo=UTC)  # payload times are millis
    address = Address(line1="1 Harbor Way", city="Rotterdam", postal_code="3011", country_code="NL")
    return OrderEvent(
        event_id=deterministic_event_id("erp", "SO-1001", "7"),
        event_type="OrderStatusChanged",
        source=Source(system="erp", vendor="pg-erp", record_id="SO-1001", changed_at=at),
        correlation_id="corr-1",
        occurred_at=at,
        ingested_at=at,
        changed_fields=["status", "promised_date"],
        payload=Order(
            order_id="ord-1", account_id="acc-1", quote_id="q-7", quote_revision=3,
            erp_order_number="SO-1001", status="CONFIRMED", currency="EUR",
            lines=[
                OrderLine(line_number=i, sku=f"SKU-{i}", description="Pump housing",
                          quantity=Decimal("2"), unit_price=Decimal("149.99"),
                          discount_percent=Decimal("7.5"), line_total=Decimal("277.4815"),
                          requested_date=date(2025, 4, 1), promised_date=date(2025, 4, 2))
                for i in range(1, lines + 1)
            ],
            total=Decimal("1387.4075"), bill_to=address, ship_to=address,
            requested_date=date(2025, 4, 1), promised_date=date(2025, 4, 2), ordered_at=at,
        ),
    )  # fmt: skip


def rate(fn: Callable[[], Any], events: int, repeat: int) -> float:
    """Best-of-``repeat`` events per second of ``fn``."""
    best = min(timeit.repeat(fn, number=events, repeat=repeat))
    return events / best


def run(events: int, repeat: int) -> dict[str, Any]:
    event = order_event()
    contract = default_registry().latest("order")
    parsed = contract.parsed
    record = to_avro(event)
    single = make_serializer("order")
    registry = SchemaRegistryClient.new_client({"url": "mock://bench"})
    confluent = make_serializer("order", wire_format="confluent", registry=registry)
    ctx = SerializationContext("canonical.order.v1", MessageField.VALUE)
    deserializer = make_deserializer(registry=registry)
    so_bytes = single(event, ctx)
    cf_bytes = confluent(event, ctx)
    body = so_bytes[10:]
    assert deserializer(so_bytes, ctx) == event
    assert deserializer(cf_bytes, ctx) == event

    def raw_write() -> bytes:
        out = io.BytesIO()
        schemaless_writer(out, parsed, record)
        return out.getvalue()

    def raw_read() -> Any:
        return schemaless_reader(io.BytesIO(body), parsed, None)

    codec = compile_codec(parsed)
    assert codec is not None
    assert codec.encode(record) == raw_write()
    assert codec.decode(body) == raw_read()

    rows = {
        "raw fastavro write (dict)": rate(raw_write, events, repeat),
        "generated codec write (dict)": rate(lambda: codec.encode(record), events, repeat),
        "encode single-object": rate(lambda: single(event, ctx), events, repeat),
        "encode confluent": rate(lambda: confluent(event, ctx), events, repeat),
        "raw fastavro read (dict)": rate(raw_read, events, repeat),
        "generated codec read (dict)": rate(lambda: codec.decode(body), events, repeat),
        "decode single-object": rate(lambda: deserializer(so_bytes, ctx), events, repeat),
        "decode confluent": rate(lambda: deserializer(cf_bytes, ctx), events, repeat),
    }
    baseline = {
        "encode": rows["raw fastavro write (dict)"],
        "decode": rows["raw fastavro read (dict)"],
    }
    results = []
    for name, per_second in rows.items():
        kind = "encode" if "write" in name or "encode" in name else "decode"
        results.append({
            "case": name, "events_per_s": round(per_second), "us_per_event": 1e6 / per_second,
            "ratio_vs_raw": per_second / baseline[kind],
        })  # fmt: skip
    return {
        "benchmark": "serde",
        "contract": f"order v{contract.version}",
        "record_bytes": len(body),
        "events": events,
        "repeat": repeat,
        "target_ratio": TARGET,
        "python": platform.python_version(),
        "fastavro": fastavro.__version__,
        "results": results,
        "meets_target": all(r["ratio_vs_raw"] >= TARGET for r in results),
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Serde, {report['contract']} ({report['record_bytes']} B body), "
        f"best of {report['repeat']} x {report['events']} events, target >= {TARGET}x raw",
        "",
        "| case | events/s | µs/event | vs raw fastavro |",
        "|---|---:|---:|---:|",
    ]
    for r in report["results"]:
        lines.append(f"| {r['case']} | {r['events_per_s']:,} | {r['us_per_event']:.1f} | "
                     f"{r['ratio_vs_raw']:.2f}x |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    report = run(args.events, args.repeat)
    write_result(RESULTS, report)
    print(markdown(report))
    print(f"\nwrote {RESULTS.relative_to(ROOT)}; meets target: {report['meets_target']}")


if __name__ == "__main__":
    main()
