"""The quote-to-order benchmark's topics, its input, and what it reads back from the broker.

Shared by the bursts of ``bench.quote_to_order.run`` (the workers and the plain loops) and the
Quix Streams benchmark: the same topics, the same quotes, the same measure of throughput and
latency from the records' append times.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from contracts import decode, encode
from interlock.kafka import true_end_offsets
from processors.topic_names import ProcessorTopics
from tests.processors.events import account_event, quote_event

__all__ = [
    "PARTITIONS",
    "WORKER_TABLES",
    "count",
    "create_topics",
    "create_worker_topics",
    "measure",
    "produce",
    "read",
    "wait_for",
]

PARTITIONS = 6


def create_topics(admin: AdminClient, topics: ProcessorTopics) -> None:
    names = [*topics.copartitioned(), topics.audit, topics.review, topics.cases]
    names += [f"dlq.{n}" for n in topics.canonical_inputs()]
    futures = admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names])
    for future in futures.values():
        future.result(30)


WORKER_TABLES = (
    "accounts", "identity", "seen", "orders", "parked", "correlation", "writebacks", "lines",
    "ledger", "cases",
)  # fmt: skip
"""The worker's tables (``processors.state.make_tables``): each has a changelog topic."""


def create_worker_topics(admin: AdminClient, topics: ProcessorTopics, app_id: str) -> None:
    """The worker's own topics (its clock, its tables' changelogs), made before it starts.

    The worker declares them itself, one after the other; on a broker that does not create
    topics on demand (Apache Kafka here) its first group assignment can come before the last
    exists, and Faust then leaves that topic unassigned ("Ignoring missing topic"): a worker
    without its clock never shows ready.
    """
    compact = {"cleanup.policy": "compact"}
    new = [NewTopic(f"{app_id}-{t}-changelog", PARTITIONS, 1, config=compact)
           for t in WORKER_TABLES]  # fmt: skip
    new.append(NewTopic(topics.clock(app_id), PARTITIONS, 1))
    for future in admin.create_topics(new).values():
        future.result(30)


def _quotes(phase: str, quotes: int, accounts: int) -> list[tuple[bytes, bytes]]:
    return [
        (
            f"a{q % accounts}".encode(),
            encode(quote_event(f"{phase}-q{q}", f"a{q % accounts}", lines=2)),
        )
        for q in range(quotes)
    ]


def produce(
    bootstrap: str,
    topics: ProcessorTopics,
    quotes: int,
    accounts: int,
    *,
    phase: str = "burst",
    rate: float | None = None,
) -> None:
    """Accounts (first phase only), then quotes: all at once, or paced at ``rate`` per second."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    if phase == "burst":
        for a in range(accounts):
            producer.produce(topics.account, encode(account_event(f"a{a}")), f"a{a}".encode())
        producer.flush(60)
    encoded = _quotes(phase, quotes, accounts)
    started = time.monotonic()
    for i, (key, value) in enumerate(encoded):
        if rate is not None and i % 50 == 0:
            # Paced in steps of 50: the offered load is steady at 20 ms resolution.
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            producer.poll(0)
        try:
            producer.produce(topics.quote, value, key)
        except BufferError:
            producer.poll(0.1)
            producer.produce(topics.quote, value, key)
    producer.flush(120)


def read(bootstrap: str, topic: str, *, keys: bool = False) -> list[tuple[int, bytes]]:
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
                out.append((msg.timestamp()[1], msg.key() if keys else msg.value()))
    consumer.close()
    return out


def count(bootstrap: str, topic: str) -> int:
    ends = true_end_offsets(
        {"bootstrap.servers": bootstrap}, [(topic, p) for p in range(PARTITIONS)]
    )
    return sum(ends.values())


def measure(
    bootstrap: str,
    topics: ProcessorTopics,
    orders_changelog: str | None = None,
    read_back_done_ms: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Per phase (the quote id prefix): throughput and quote → command latency.

    With ``orders_changelog`` (Faust), also the throughput up to the read-back of the last
    command: the work a worker does after it emitted a command (fold it into the order
    state, changelog writes) belongs to the quote too. The plain loop, which keeps no
    changelog, reports when it read back its last command (``read_back_done_ms``, one phase).
    """
    readback_ts: dict[str, int] = {}
    if orders_changelog:
        for ts, key in read(bootstrap, orders_changelog, keys=True):
            readback_ts[json.loads(key)] = ts
    quote_ts: dict[str, int] = {}
    for ts, value in read(bootstrap, topics.quote):
        quote_ts[decode(value).payload.quote_id] = ts  # type: ignore[attr-defined]
    command_ts: dict[str, int] = {}
    for ts, value in read(bootstrap, topics.create_order):
        qid = decode(value).payload.quote_id  # type: ignore[attr-defined]
        command_ts.setdefault(qid, ts)
    phases: dict[str, dict[str, Any]] = {}
    for phase in sorted({q.split("-", 1)[0] for q in quote_ts}):
        quoted = {q: t for q, t in quote_ts.items() if q.startswith(f"{phase}-")}
        done = {q: t for q, t in command_ts.items() if q in quoted}
        latencies = sorted((t - quoted[q]) / 1000 for q, t in done.items())
        elapsed = (max(done.values()) - min(quoted.values())) / 1000 if done else 0.0
        phases[phase] = {
            "quotes": len(quoted),
            "orders": len(done),
            "seconds": round(elapsed, 3),
            "events_per_s": round(len(quoted) / elapsed) if elapsed > 0 else None,
            "latency_p50_s": round(statistics.median(latencies), 4) if latencies else None,
            "latency_p99_s": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 4)
            if latencies
            else None,
        }
        if orders_changelog:
            back = [t for q, t in readback_ts.items() if q in quoted]
            span = (max(back) - min(quoted.values())) / 1000 if back else 0.0
            phases[phase]["read_back"] = len(back)
            phases[phase]["events_per_s_incl_read_back"] = (
                round(len(quoted) / span) if span > 0 else None
            )
        elif read_back_done_ms is not None:
            span = (read_back_done_ms - min(quoted.values())) / 1000
            phases[phase]["events_per_s_incl_read_back"] = (
                round(len(quoted) / span) if span > 0 else None
            )
    return phases


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)
