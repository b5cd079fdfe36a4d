"""The webhook receiver: an ASGI app that verifies, lands raw, and only then answers 2xx.

Routes: ``POST /webhooks/hubspot`` (HubSpot v3 signatures), ``POST /webhooks/standard/{source}``
(Standard Webhooks), ``GET /healthz``, ``GET /metrics``. Every error answers one line of JSON,
``{"error": ..., "reason": ...}``: 401 bad/missing/stale signature, 413 body too large,
400 malformed JSON, 404 unknown source, 503 (with ``Retry-After``) when Kafka did not
acknowledge the raw record. Mapping to canonical events is a separate consumer
(:mod:`connectors.webhooks.stage`), so the answer depends only on the raw landing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.webhooks.landing import KEPT_HEADERS, BrokerUnavailableError, Landing, RawRequest
from connectors.webhooks.signatures import SignatureError, verify_hubspot_v3, verify_standard
from interlock.instruments import Instruments
from interlock.settings import WebhookSettings

__all__ = ["HEADER_PREFIX", "WebhookError", "create_app"]

log = logging.getLogger(__name__)
HEADER_PREFIX = "interlock.webhook."


class WebhookError(Exception):
    """An answer other than 2xx: HTTP status, short error code and a one-line reason."""

    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) a declared or actual size over ``limit`` while streaming."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise WebhookError(413, "payload_too_large", f"body of {declared} bytes > {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise WebhookError(413, "payload_too_large", f"body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookError(400, "malformed_json", f"body is not JSON: {exc}") from exc


def _kept_headers(
    request: Request, source: str, vendor: str, webhook_id: str, received_ms: int
) -> list[tuple[str, bytes]]:
    headers = [
        (HEADER_PREFIX + "source", source.encode()),
        (HEADER_PREFIX + "vendor", vendor.encode()),
        (HEADER_PREFIX + "id", webhook_id.encode()),
        (HEADER_PREFIX + "received_at", str(received_ms).encode()),
    ]
    headers += [(n, request.headers[n].encode()) for n in KEPT_HEADERS if n in request.headers]
    return headers


def _hubspot_order_key(first: Any) -> str | None:
    """The company a HubSpot request is about, to key its raw record by (None: unknown).

    HubSpot sends a deal's line items and its acceptance as separate requests; keyed by
    company, they stay in one raw partition, so the mapping stage keeps their order.
    """
    if not isinstance(first, dict):
        return None
    kind = str(first.get("subscriptionType") or "").split(".", 1)[0]
    company = first.get("objectId") if kind == "company" else first.get("associatedCompanyId")
    return f"company:{company}" if company not in (None, "") else None


def create_app(
    config: WebhookSettings,
    landing: Landing,
    instruments: Instruments,
    *,
    topics: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
    bare_endpoint: bool = False,
) -> Starlette:
    """The receiver app.

    Args:
        config: ``settings.webhooks`` (secrets, limits, public URL).
        landing: produces raw records and awaits their acknowledgement.
        instruments: metrics (``interlock_webhook_requests_total`` by source and status).
        topics: raw topic per vendor (default ``raw.crm.hubspot`` / ``raw.crm.standard``).
        clock: seconds since the epoch (tests pass a fixed one).
        bare_endpoint: also serve ``POST /bench/noop``, which reads the body and does nothing
            (the benchmark's baseline).
    """
    raw_topics = {"hubspot": "raw.crm.hubspot", "standard": "raw.crm.standard", **(topics or {})}

    def answer(source: str, status: int, body: dict[str, Any], **headers: str) -> Response:
        instruments.webhook_requests.labels(source, str(status)).inc()
        return JSONResponse(body, status_code=status, headers=headers or None)

    async def guarded(source: str, handle: Callable[[], Any]) -> Response:
        try:
            accepted = await handle()
        except WebhookError as exc:
            return answer(source, exc.status, {"error": exc.error, "reason": exc.reason})
        except SignatureError as exc:
            return answer(source, 401, {"error": f"signature_{exc.reason}", "reason": str(exc)})
        except BrokerUnavailableError as exc:
            log.warning("webhook from %s not landed: %s", source, exc)
            retry = str(config.retry_after_s)
            return answer(
                source,
                503,
                {"error": "broker_unavailable", "reason": str(exc)},
                **{"Retry-After": retry},
            )
        return answer(source, 200, {"status": "accepted", "id": accepted})

    async def land(
        request: Request,
        vendor: str,
        source: str,
        webhook_id: str,
        body: bytes,
        key: str | None = None,
    ) -> None:
        received_ms = int(clock() * 1000)
        topic = raw_topics[vendor]
        headers = _kept_headers(request, source, vendor, webhook_id, received_ms)
        await landing.land(RawRequest(topic, key or webhook_id, body, headers, received_ms))
        instruments.events_produced.labels(instruments.service, topic).inc()

    async def hubspot(request: Request) -> Response:
        async def handle() -> str:
            secret = config.hubspot.client_secret
            if secret is None:
                raise WebhookError(404, "unknown_source", "HubSpot is not configured")
            body = await _read_body(request, config.max_body_bytes)
            uri = str(request.url)
            if config.public_url:
                query = f"?{request.url.query}" if request.url.query else ""
                uri = config.public_url.rstrip("/") + request.url.path + query
            verify_hubspot_v3(
                secret.get_secret_value(),
                method=request.method,
                uri=uri,
                body=body,
                signature=request.headers.get("x-hubspot-signature-v3"),
                timestamp=request.headers.get("x-hubspot-request-timestamp"),
                now_ms=int(clock() * 1000),
                max_age_s=config.hubspot.max_age_s,
            )
            events = _parse_json(body)
            if not isinstance(events, list | dict):
                raise WebhookError(400, "malformed_json", "expected an array of events")
            first = events[0] if isinstance(events, list) and events else events
            event_id = first.get("eventId") if isinstance(first, dict) else None
            webhook_id = str(event_id) if event_id is not None else hashlib.sha256(body).hexdigest()
            await land(request, "hubspot", "hubspot", webhook_id, body, _hubspot_order_key(first))
            return webhook_id

        return await guarded("hubspot", handle)

    async def standard(request: Request) -> Response:
        source = request.path_params["source"]

        async def handle() -> str:
            secret = config.standard.secrets.get(source)
            if secret is None:
                raise WebhookError(404, "unknown_source", f"no secret for source {source!r}")
            body = await _read_body(request, config.max_body_bytes)
            verify_standard(
                secret.get_secret_value(),
                body,
                request.headers,
                now_s=clock(),
                tolerance_s=config.standard.tolerance_s,
            )
            _parse_json(body)
            webhook_id = request.headers["webhook-id"]
            await land(request, "standard", source, webhook_id, body)
            return webhook_id

        label = source if source in config.standard.secrets else "unknown"
        return await guarded(label, handle)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(instruments.registry), media_type=CONTENT_TYPE_LATEST)

    async def noop(request: Request) -> Response:
        await _read_body(request, config.max_body_bytes)
        return JSONResponse({"status": "ok"})

    routes = [
        Route("/webhooks/hubspot", hubspot, methods=["POST"]),
        Route("/webhooks/standard/{source}", standard, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if bare_endpoint:
        routes.append(Route("/bench/noop", noop, methods=["POST"]))
    return Starlette(routes=routes)
