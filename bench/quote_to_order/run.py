"""Benchmark quote → order: the Faust worker beside a plain confluent-kafka loop, same run.

Both run the same pipeline (decode, dedup, account join, validation, create-order command,
audit record, command read-back) on the same input, one after the other, on one broker (the
embedded one unless KAFKA_BOOTSTRAP_SERVERS is set). Each processor is started and ready
before the input is produced, so latency is from the quote's append (Kafka timestamp) to its
command's append. Results: ``bench/results/quote_to_order.json`` and a Markdown table.

    python -m bench.quote_to_order.run [--quotes N] [--accounts M]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from contracts import decode, encode  # noqa: E402
from interlock.broker import EmbeddedBroker, free_port  # noqa: E402
from interlock.kafka import true_end_offsets  # noqa: E402
from processors.topics import ProcessorTopics  # noqa: E402
from tests.processors.events import account_event, quote_event  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "quote_to_order.json"
PARTITIONS = 3
TARGET = 15_000


def _create_topics(admin: AdminClient, topics: ProcessorTopics) -> None:
    names = [*topics.copartitioned(), topics.audit, topics.review]
    names += [f"dlq.{n}" for n in topics.canonical_inputs()]
    futures = admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names])
    for future in futures.values():
        future.result(30)


def _produce(bootstrap: str, topics: ProcessorTopics, quotes: int, accounts: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10, "acks": "all"})
    for a in range(accounts):
        producer.produce(topics.account, encode(account_event(f"a{a}")), f"a{a}".encode())
    producer.flush(60)
    encoded = [
        (f"a{q % accounts}".encode(), encode(quote_event(f"q{q}", f"a{q % accounts}", lines=2)))
        for q in range(quotes)
    ]
    for key, value in encoded:
        try:
            producer.produce(topics.quote, value, key)
        except BufferError:
            producer.poll(0.1)
            producer.produce(topics.quote, value, key)
    producer.flush(120)


def _read(bootstrap: str, topic: str) -> list[tuple[int, bytes]]:
    conf = {"bootstrap.servers": bootstrap}
    ends = true_end_offsets(conf, [(topic, p) for p in range(PARTITIONS)])
    consumer = Consumer(
        {**conf, "group.id": f"read-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    out: list[tuple[int, bytes]] = []
    want = sum(ends.values())
    deadline = time.monotonic() + 60
    while len(out) < want and time.monotonic() < deadline:
        for msg in consumer.consume(5000, 0.5):
            if msg.error() is None and msg.value() is not None:
                out.append((msg.timestamp()[1], msg.value()))
    consumer.close()
    return out


def _count(bootstrap: str, topic: str) -> int:
    ends = true_end_offsets(
        {"bootstrap.servers": bootstrap}, [(topic, p) for p in range(PARTITIONS)]
    )
    return sum(ends.values())


def _measure(bootstrap: str, topics: ProcessorTopics, quotes: int) -> dict[str, Any]:
    quote_ts: dict[str, int] = {}
    for ts, value in _read(bootstrap, topics.quote):
        quote_ts[decode(value).payload.quote_id] = ts  # type: ignore[attr-defined]
    latencies = []
    last = 0
    seen: set[str] = set()
    for ts, value in _read(bootstrap, topics.create_order):
        qid = decode(value).payload.quote_id  # type: ignore[attr-defined]
        if qid in seen:
            continue
        seen.add(qid)
        latencies.append((ts - quote_ts[qid]) / 1000)
        last = max(last, ts)
    first = min(quote_ts.values())
    latencies.sort()
    elapsed = (last - first) / 1000
    return {
        "quotes": quotes,
        "orders": len(seen),
        "seconds": round(elapsed, 3),
        "events_per_s": round(quotes / elapsed) if elapsed > 0 else None,
        "latency_p50_s": round(statistics.median(latencies), 4),
        "latency_p99_s": round(latencies[int(len(latencies) * 0.99) - 1], 4),
    }


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


def _faust_ready(port: int, ticks: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return False
    return any(ticks in line and "consumed_total" in line for line in text.splitlines())


def run_faust(bootstrap: str, quotes: int, accounts: int, tmp: Path) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    topics = ProcessorTopics(f"bench{tag}.")
    _create_topics(AdminClient({"bootstrap.servers": bootstrap}), topics)
    port = free_port()
    app_id = f"bench-{tag}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "INTERLOCK_PROCESSORS__APP_ID": app_id,
        "INTERLOCK_PROCESSORS__TOPIC_PREFIX": topics.prefix,
        "INTERLOCK_PROCESSORS__SESSION_TIMEOUT_S": "6",
        "INTERLOCK_PROCESSORS__DATA_DIR": str(tmp / tag),
        "INTERLOCK_METRICS__PORT": str(port),
        "INTERLOCK_LOG_LEVEL": "WARNING",
    }
    with (tmp / f"faust-{tag}.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "interlock.cli", "worker"],
            env=env,
            cwd=tmp,
            stdout=log,
            stderr=log,
        )
    try:
        _wait(lambda: _faust_ready(port, f"{topics.prefix}{app_id}-ticks"), 90, "faust ready")
        _produce(bootstrap, topics, quotes, accounts)
        _wait(lambda: _count(bootstrap, topics.create_order) >= quotes, 600, "faust orders")
    finally:
        worker.terminate()
        worker.wait(60)
    return _measure(bootstrap, topics, quotes)


def run_plain(bootstrap: str, quotes: int, accounts: int) -> dict[str, Any]:
    topics = ProcessorTopics(f"plain{uuid.uuid4().hex[:8]}.")
    _create_topics(AdminClient({"bootstrap.servers": bootstrap}), topics)
    loop = subprocess.Popen(
        [sys.executable, "-m", "bench.quote_to_order.plain_loop", bootstrap, topics.prefix],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
    )
    try:
        assert loop.stdout is not None
        assert loop.stdout.readline().strip() == b"ready"
        _produce(bootstrap, topics, quotes, accounts)
        _wait(lambda: _count(bootstrap, topics.create_order) >= quotes, 600, "plain orders")
    finally:
        loop.terminate()
        loop.wait(30)
    return _measure(bootstrap, topics, quotes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quotes", type=int, default=20_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    args = parser.parse_args()
    tmp = ROOT / ".interlock" / "bench"
    tmp.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            bootstrap = stack.enter_context(EmbeddedBroker()).bootstrap_servers
        faust = run_faust(bootstrap, args.quotes, args.accounts, tmp)
        plain = run_plain(bootstrap, args.quotes, args.accounts)
    result = {
        "benchmark": "quote_to_order",
        "target_events_per_s": TARGET,
        "faust_worker": faust,
        "plain_confluent_loop": plain,
        "faust_vs_plain": round(faust["events_per_s"] / plain["events_per_s"], 3),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "broker": "embedded tansu" if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS") else "external",
        "note": "input produced as one burst after the processor is ready: latency includes "
        "queueing behind the burst; events/s = quotes / (last command time - first quote time)",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print("| pipeline | quotes | events/s | p50 latency (s) | p99 latency (s) |")
    print("|---|---:|---:|---:|---:|")
    for name, r in (("Faust worker", faust), ("plain confluent-kafka loop", plain)):
        print(
            f"| {name} | {r['quotes']} | {r['events_per_s']} | {r['latency_p50_s']} | "
            f"{r['latency_p99_s']} |"
        )
    print(f"\ntarget ≥ {TARGET} events/s per worker; Faust/plain = {result['faust_vs_plain']}")


if __name__ == "__main__":
    main()
