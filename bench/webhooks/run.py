"""Webhook ingest: signed Standard-Webhooks requests landed with acks=all vs a bare endpoint.

Same server, same run: ``POST /webhooks/standard/bench`` (verify, land raw, await the broker's
acknowledgement) beside ``POST /bench/noop`` (read the body, answer). The server runs in its own
process (uvicorn); the load comes from another process (httpx.AsyncClient, a pool of
``--concurrency`` connections and as many concurrent senders).
Writes bench/results/webhooks.json and prints a Markdown table.

    python -m bench.webhooks.run [--requests 2000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

from bench.harness import kafka_bootstrap, write_result
from connectors.webhooks.service import build_receiver
from interlock.broker import free_port
from interlock.instruments import Instruments
from interlock.metrics import new_registry
from interlock.settings import Settings, StandardWebhookSettings, WebhookSettings

SECRET = "whsec_" + base64.b64encode(b"bench-secret-0123456789").decode()
ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "webhooks.json"


async def _load(url: str, n: int, concurrency: int, signed: bool) -> float:
    body = json.dumps({"type": "company.updated", "data": {"id": "c-1", "name": "Bench"}})
    hook = Webhook(SECRET)
    queue = list(range(n))

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            queue.pop()
            headers = {"Content-Type": "application/json"}
            if signed:
                msg_id = f"msg_{uuid.uuid4().hex}"
                now = datetime.now(UTC)
                headers |= {
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(int(now.timestamp())),
                    "webhook-signature": hook.sign(msg_id, now, body),
                }
            response = await client.post(url, content=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{url}: {response.status_code} {response.text}")

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return n / (time.perf_counter() - started)


def serve(bootstrap: str, topic: str, port: int) -> None:
    """The server process: the receiver with the bare endpoint, on uvicorn, until SIGTERM."""
    import signal

    import uvicorn

    settings = Settings(_env_file=None).with_bootstrap(bootstrap)  # type: ignore[call-arg]
    settings = settings.model_copy(
        update={
            "webhooks": WebhookSettings(
                standard=StandardWebhookSettings(secrets={"bench": SecretStr(SECRET)})
            )
        }
    )
    instruments = Instruments(new_registry(process=False), "bench")
    app, landing = build_receiver(
        settings, instruments, topics={"standard": topic}, bare_endpoint=True
    )
    signal.signal(signal.SIGTERM, lambda *_: None)  # uvicorn re-raises it after shutdown
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    finally:
        landing.close()


def _child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.webhooks.run", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def _measure(url: str, n: int, concurrency: int) -> float:
    """Run the load generator in its own process; its req/s."""
    load = _child("--load", url, "--requests", str(n), "--concurrency", str(concurrency))
    out, _ = load.communicate(timeout=600)
    if load.returncode != 0:
        raise RuntimeError(f"load generator failed on {url}")
    return float(json.loads(out.strip().splitlines()[-1])["req_per_s"])


def run(bootstrap: str, n: int, concurrency: int) -> dict[str, object]:
    topic = f"raw.crm.standard.bench.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        f.result(30)
    port = free_port()
    server = _child("--serve", bootstrap, topic, str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("bench server did not start")
            time.sleep(0.1)
        _measure(f"{base}/bench/noop", 200, concurrency)  # warm-up
        bare = _measure(f"{base}/bench/noop", n, concurrency)
        signed = _measure(f"{base}/webhooks/standard/bench", n, concurrency)
    finally:
        server.terminate()
        server.wait(30)
    return {
        "benchmark": "webhooks",
        "requests": n,
        "concurrency": concurrency,
        "processes": "server (uvicorn) and load generator (httpx) in separate processes",
        "bare_endpoint_req_per_s": round(bare, 1),
        "signed_ingest_acks_all_req_per_s": round(signed, 1),
        "ratio_signed_to_bare": round(signed / bare, 3),
        "broker": "external" if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") else "embedded tansu",
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--serve", nargs=3, metavar=("BOOTSTRAP", "TOPIC", "PORT"))
    parser.add_argument("--load", metavar="URL")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], args.serve[1], int(args.serve[2]))
        return
    if args.load:
        signed = "/webhooks/" in args.load
        rate = asyncio.run(_load(args.load, args.requests, args.concurrency, signed))
        print(json.dumps({"req_per_s": rate}))
        return
    with kafka_bootstrap() as bootstrap:
        result = run(bootstrap, args.requests, args.concurrency)
    write_result(RESULTS, result)
    print("| endpoint | req/s |\n|---|---:|")
    print(f"| bare (no-op) | {result['bare_endpoint_req_per_s']} |")
    print(f"| signed ingest, acks=all | {result['signed_ingest_acks_all_req_per_s']} |")
    print(f"| ratio signed/bare | {result['ratio_signed_to_bare']} |")


if __name__ == "__main__":
    main()
