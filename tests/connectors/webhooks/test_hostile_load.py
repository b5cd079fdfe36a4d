"""10,000 hostile requests against ``interlock webhooks`` over loopback HTTP.

The real command runs in its own process (no mapper); four client threads send requests from
:mod:`tests.connectors.webhooks.hostile` (random and deep bodies, other encodings, overlong ids
and headers, good, wrong, garbage, missing and stale signatures). Afterwards: no answer was a
5xx, the receiver's resident memory grew by less than ``RSS_GROWTH_BOUND`` between the 2,000th
and the 10,000th request, and every record on the raw topics is the body of a validly signed
request that was answered 200 (and each such request landed once).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from interlock.broker import free_port
from interlock.settings import Settings
from tests.conftest import end_offsets, wait_for_leaders
from tests.connectors.webhooks.conftest import HUBSPOT_SECRET, STANDARD_SECRET
from tests.connectors.webhooks.hostile import hostile_request
from tests.connectors.webhooks.test_cli import _base_env, _start, _terminate, _wait_ok

pytestmark = pytest.mark.integration

REQUESTS = 10_000
CLIENTS = 4
RSS_GROWTH_BOUND = 16 * 1024 * 1024
"""Bytes the receiver may grow between the 2,000th and the 10,000th request (allocator noise
and the producer's buffers, not a leak: a leak of even 2 KB per request would exceed it)."""
RAW = ("raw.crm.hubspot", "raw.crm.standard")


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _raw_bodies(bootstrap: str, start: dict[tuple[str, int], int], end: dict) -> list[str]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "hostile-check", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(t, p, o) for (t, p), o in start.items()])
    wanted = sum(end[tp] - start[tp] for tp in start)
    bodies: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while len(bodies) < wanted and time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.5):
                if msg.error() is None:
                    bodies.append(hashlib.sha256(msg.value() or b"").hexdigest())
                else:
                    assert msg.error().code() == KafkaError._PARTITION_EOF
    finally:
        consumer.close()
    return bodies


def test_ten_thousand_hostile_requests_no_5xx_flat_memory_only_signed_land(
    settings: Settings,
) -> None:
    bootstrap = settings.kafka.bootstrap_servers or ""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    missing = [t for t in RAW if t not in admin.list_topics(timeout=10).topics]
    if missing:  # another test on this broker may have made them
        for future in admin.create_topics([NewTopic(t, 1, 1) for t in missing]).values():
            future.result(30)
    wait_for_leaders(admin, list(RAW))
    conf = {"bootstrap.servers": bootstrap}
    start = end_offsets(conf, [(t, 0) for t in RAW])

    port, metrics_port = free_port(), free_port()
    env = {
        **_base_env(settings, metrics_port),
        "INTERLOCK_WEBHOOKS__STANDARD__SECRETS": f'{{"acme": "{STANDARD_SECRET}"}}',
        "INTERLOCK_WEBHOOKS__HUBSPOT__CLIENT_SECRET": HUBSPOT_SECRET,
        "INTERLOCK_WEBHOOKS__MAX_BODY_BYTES": "65536",
        "INTERLOCK_WEBHOOKS__MAPPER": "false",
        "INTERLOCK_LOG_LEVEL": "ERROR",
    }
    proc = _start(["webhooks", "--port", str(port)], env)
    base = f"http://127.0.0.1:{port}"
    statuses: Counter[int] = Counter()
    accepted: list[str] = []
    fivexx: list[str] = []
    rss: dict[int, int] = {}
    sent = 0
    lock = threading.Lock()

    def client(seed: int) -> None:
        nonlocal sent
        rng = random.Random(seed)
        with httpx.Client(timeout=30) as http:
            while True:
                with lock:
                    if sent >= REQUESTS:
                        return
                    sent += 1
                    number = sent
                request = hostile_request(rng, base)
                answer = http.post(
                    base + request.path, content=request.body, headers=request.headers
                )
                with lock:
                    statuses[answer.status_code] += 1
                    if answer.status_code >= 500:
                        fivexx.append(f"{answer.status_code} {answer.text[:200]}")
                    if answer.status_code == 200:
                        assert request.signed, request
                        accepted.append(hashlib.sha256(request.body).hexdigest())
                    if number in (2_000, REQUESTS):
                        rss[number] = _rss(proc.pid)

    try:
        _wait_ok(proc, f"{base}/readyz")
        began = time.monotonic()
        threads = [threading.Thread(target=client, args=(seed,)) for seed in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        elapsed = time.monotonic() - began
        assert _wait_ok(proc, f"{base}/healthz").json() == {"status": "ok"}
    finally:
        code = _terminate(proc)
    assert code == 0
    print(
        f"\n{REQUESTS} requests in {elapsed:.1f} s ({REQUESTS / elapsed:.0f}/s); "
        f"statuses {dict(sorted(statuses.items()))}; RSS {rss.get(2_000, 0) / 2**20:.1f} -> "
        f"{rss.get(REQUESTS, 0) / 2**20:.1f} MiB"
    )
    assert sum(statuses.values()) == REQUESTS
    assert fivexx == []
    assert {200, 400, 401, 404, 413, 431} <= set(statuses)
    assert rss[REQUESTS] - rss[2_000] < RSS_GROWTH_BOUND, rss
    end = end_offsets(conf, list(start))
    landed = _raw_bodies(bootstrap, start, end)
    assert sorted(landed) == sorted(accepted)
