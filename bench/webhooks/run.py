"""Webhook ingest: signed Standard-Webhooks requests landed with acks=all vs a bare endpoint.

Same server, same run: ``POST /webhooks/standard/bench`` (verify, land raw, await the broker's
acknowledgement) beside ``POST /bench/noop`` (read the body, answer). Load comes from httpx with
N concurrent clients. Writes bench/results/webhooks.json and prints a Markdown table.

    python -m bench.webhooks.run [--requests 2000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

from connectors.fakes.server import ServerThread
from connectors.webhooks.service import build_receiver
from interlock.broker import EmbeddedBroker
from interlock.instruments import Instruments
from interlock.metrics import new_registry
from interlock.settings import Settings, StandardWebhookSettings, WebhookSettings

SECRET = "whsec_" + base64.b64encode(b"bench-secret-0123456789").decode()
RESULTS = Path(__file__).resolve().parent.parent / "results" / "webhooks.json"


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


def run(bootstrap: str, n: int, concurrency: int) -> dict[str, object]:
    topic = f"raw.crm.standard.bench.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        f.result(30)
    settings = Settings(_env_file=None).with_bootstrap(bootstrap)
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
    with ServerThread(app) as server:
        asyncio.run(_load(f"{server.url}/bench/noop", 200, concurrency, False))  # warm-up
        bare = asyncio.run(_load(f"{server.url}/bench/noop", n, concurrency, False))
        signed = asyncio.run(_load(f"{server.url}/webhooks/standard/bench", n, concurrency, True))
    landing.close()
    return {
        "benchmark": "webhooks",
        "requests": n,
        "concurrency": concurrency,
        "bare_endpoint_req_per_s": round(bare, 1),
        "signed_ingest_acks_all_req_per_s": round(signed, 1),
        "ratio_signed_to_bare": round(signed / bare, 3),
        "broker": "external" if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") else "embedded tansu",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        result = run(external, args.requests, args.concurrency)
    else:
        with EmbeddedBroker() as broker:
            result = run(broker.bootstrap_servers, args.requests, args.concurrency)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print("| endpoint | req/s |\n|---|---:|")
    print(f"| bare (no-op) | {result['bare_endpoint_req_per_s']} |")
    print(f"| signed ingest, acks=all | {result['signed_ingest_acks_all_req_per_s']} |")
    print(f"| ratio signed/bare | {result['ratio_signed_to_bare']} |")


if __name__ == "__main__":
    main()
