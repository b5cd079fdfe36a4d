"""Embedded broker: what a fetch that returns records costs it, by batches stored in the partition.

Tansu's in-memory engine keeps every record batch as one object and, on every fetch that has
records to return, lists every object of the partition to find the offsets. So the broker's cost
per fetch grows with everything the partition holds, and it never drops anything (no retention).
This measures that in one run on one fresh embedded broker:

- one partition filled with single-record batches (what a webhook, acks=all, one request at a
  time, produces) up to each size in ``--sizes``; at each size, ``--rounds`` rounds of "produce
  one record, a consumer at the end fetches it": the broker's CPU per round (from /proc) and the
  round's wall time; the smallest size is the baseline;
- the same number of records as the largest size stored as batches of ``--batch`` records:
  what producer batching (linger) buys;
- ListOffsets (latest) at each size, which walks the same list.

Writes bench/results/broker.json and prints a Markdown table.

    python -m bench.broker.run [--sizes 1000,4000,16000] [--rounds 300] [--batch 100]
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.harness import write_result
from interlock.broker import embedded_broker
from interlock.resources import usage
from interlock.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "broker.json"
PAYLOAD = b"x" * 500


def _cpu(pid: int) -> float:
    now = usage(pid)
    if now is None:
        raise RuntimeError("the embedded broker is gone")
    return now.cpu_seconds


class Partition:
    """One single-partition topic, a producer without linger and a consumer at its end."""

    def __init__(self, bootstrap: str, broker_pid: int) -> None:
        self.pid = broker_pid
        self.topic = f"bench.broker.{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for f in admin.create_topics([NewTopic(self.topic, 1, 1)]).values():
            f.result(30)
        self.tp = TopicPartition(self.topic, 0)
        self.producer = Producer(
            {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0, "batch.size": 1 << 20}
        )
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-broker-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
            }
        )
        self.batches = 0
        self.records = 0

    def fill(self, batches: int, records_per_batch: int = 1) -> None:
        """Append single-request batches of ``records_per_batch`` records up to ``batches``."""
        while self.batches < batches:
            for _ in range(records_per_batch):
                self.producer.produce(self.topic, PAYLOAD, partition=0)
            self.producer.flush(30)
            self.batches += 1
            self.records += records_per_batch

    def _end(self) -> int:
        return int(self.consumer.get_watermark_offsets(self.tp, timeout=30, cached=False)[1])

    def rounds(self, n: int) -> dict[str, float]:
        """Per round: produce one record, fetch it at the end. Broker CPU and wall per round."""
        self.consumer.assign([TopicPartition(self.topic, 0, self.records)])
        self.consumer.poll(0.5)  # the first fetch at the end: the consumer is in place
        cpu0, t0 = _cpu(self.pid), time.perf_counter()
        for _ in range(n):
            self.producer.produce(self.topic, PAYLOAD, partition=0)
            self.producer.flush(30)
            self.batches += 1
            self.records += 1
            while True:
                msg = self.consumer.poll(5.0)
                if msg is None:
                    raise RuntimeError("a produced record was not fetched within 5 s")
                if msg.error() is None:
                    break
        cpu1, t1 = _cpu(self.pid), time.perf_counter()
        calls = max(20, n // 10)
        for _ in range(calls):
            self._end()
        cpu2 = _cpu(self.pid)
        return {
            "broker_cpu_us_per_round": (cpu1 - cpu0) / n * 1e6,
            "wall_us_per_round": (t1 - t0) / n * 1e6,
            "broker_cpu_us_per_list_offsets": (cpu2 - cpu1) / calls * 1e6,
        }

    def close(self) -> None:
        self.consumer.close()


def run(sizes: list[int], rounds: int, batch: int) -> dict[str, Any]:
    by_size: list[dict[str, Any]] = []
    with embedded_broker(Settings(_env_file=None)) as broker:
        assert broker.pid is not None
        single = Partition(broker.bootstrap_servers, broker.pid)
        for size in sizes:
            single.fill(size)
            stored = single.batches
            by_size.append({"batches": stored, "records": single.records, **single.rounds(rounds)})
        single.close()
        batched = Partition(broker.bootstrap_servers, broker.pid)
        batched.fill(max(1, max(sizes) // batch), batch)
        stored_records = batched.records
        batched_result = {
            "batches": batched.batches,
            "records": stored_records,
            "records_per_batch": batch,
            **batched.rounds(rounds),
        }
        batched.close()
    first, last = by_size[0], by_size[-1]
    span = last["batches"] - first["batches"]
    slope = (
        (last["broker_cpu_us_per_round"] - first["broker_cpu_us_per_round"]) / span
        if span > 0
        else None
    )
    return {
        "rounds": rounds,
        "by_size": by_size,
        "batched": batched_result,
        "broker_cpu_us_per_stored_batch": slope,
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,4000,16000")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    results = run(sizes, args.rounds, args.batch)
    write_result(RESULTS, results)
    base = results["by_size"][0]["broker_cpu_us_per_round"]
    print("| batches stored | records | broker CPU µs/round | ratio | wall µs/round |")
    print("|---:|---:|---:|---:|---:|")
    for r in [*results["by_size"], results["batched"]]:
        print(
            f"| {r['batches']:,} | {r['records']:,} | {r['broker_cpu_us_per_round']:,.0f} | "
            f"{r['broker_cpu_us_per_round'] / base:.2f}x | {r['wall_us_per_round']:,.0f} |"
        )


if __name__ == "__main__":
    main()
