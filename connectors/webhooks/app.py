"""The webhook receiver: an ASGI app that verifies, lands raw, and only then answers 2xx.

Routes: ``POST /webhooks/hubspot`` (HubSpot v3 signatures), ``POST /webhooks/standard/{source}``
(Standard Webhooks), ``GET /healthz`` (liveness), ``GET /readyz`` (readiness), ``GET /metrics``.
Every error answers one line of JSON, ``{"error": ..., "reason": ...}``: 431 a header over its
length cap, 413 body too large, 401 bad/missing/stale signature, 400 a body that is not UTF-8
JSON within the depth cap (checked only once the signature holds), 404 unknown source, 503 (with
``Retry-After``) when Kafka did not acknowledge the raw record, 500 for a bug (logged). Every
answer of a webhook route, 5xx included, is counted in ``interlock_webhook_requests_total``.
Mapping to canonical events is a separate consumer
(:mod:`connectors.webhooks.mapping_stage`), so the answer depends only on the raw landing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.webhooks.bodies import (
    WebhookError,
    check_header_lengths,
    check_json_body,
    parse_json_body,
)
from connectors.webhooks.health import ServiceHealth
from connectors.webhooks.landing import (
    KEPT_HEADERS,
    BrokerUnavailableError,
    Landing,
    RawRequest,
    RecordTooLargeError,
)
from connectors.webhooks.signatures import SignatureError, verify_hubspot_v3, verify_standard
from interlock.instruments import Instruments
from interlock.settings import WebhookSettings

__all__ = ["HEADER_PREFIX", "WebhookError", "create_app"]

log = logging.getLogger(__name__)
HEADER_PREFIX = "interlock.webhook."


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


def _header_values(request: Request) -> dict[str, str]:
    """The request's headers, decoded once: the first value of a repeated name, as Starlette's
    ``request.headers`` answers (which decodes and scans the whole list at every lookup)."""
    values: dict[str, str] = {}
    for name, value in request.scope["headers"]:
        values.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return values


def _kept_headers(
    sent: Mapping[str, str], source: str, vendor: str, webhook_id: str, received_ms: int
) -> list[tuple[str, bytes]]:
    headers = [
        (HEADER_PREFIX + "source", source.encode()),
        (HEADER_PREFIX + "vendor", vendor.encode()),
        (HEADER_PREFIX + "id", webhook_id.encode()),
        (HEADER_PREFIX + "received_at", str(received_ms).encode()),
    ]
    # the sender's header values as they came (decoded as Latin-1: one character per byte)
    headers += [(n, sent[n].encode("latin-1")) for n in KEPT_HEADERS if n in sent]
    return headers


def _plain_id(value: Any) -> str | None:
    """A record id as text: only JSON strings and integers are ids (not objects, not booleans)."""
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        return None
    return str(value)


def _hubspot_order_key(first: Any) -> str | None:
    """The company a HubSpot request is about, to key its raw record by (None: unknown).

    HubSpot sends a deal's line items and its acceptance as separate requests; keyed by
    company, they stay in one raw partition, so the mapping stage keeps their order.
    """
    if not isinstance(first, dict):
        return None
    kind = str(first.get("subscriptionType") or "").split(".", 1)[0]
    company = _plain_id(
        first.get("objectId") if kind == "company" else first.get("associatedCompanyId")
    )
    return f"company:{company}" if company is not None else None


def _capped_id(value: str, what: str, limit: int) -> str:
    """``value`` if it can be a Kafka key: UTF-8 text (no lone surrogate) of at most ``limit``."""
    try:
        size = len(value.encode())
    except UnicodeEncodeError as exc:  # JSON may escape a lone surrogate: "\ud800"
        raise WebhookError(400, "invalid_id", f"{what} is not Unicode text: {exc.reason}") from exc
    if size > limit:
        raise WebhookError(400, "id_too_long", f"{what} is longer than {limit} bytes")
    return value


def create_app(
    config: WebhookSettings,
    landing: Landing,
    instruments: Instruments,
    *,
    topics: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
    bare_endpoint: bool = False,
    health: ServiceHealth | None = None,
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
        health: what ``/healthz`` and ``/readyz`` report (default: the landing's).
    """
    raw_topics = {"hubspot": "raw.crm.hubspot", "standard": "raw.crm.standard", **(topics or {})}
    service_health = health or landing.health
    other = config.max_header_bytes
    hubspot_caps = {
        "x-hubspot-signature-v3": other,
        "x-hubspot-request-timestamp": other,
        "content-type": other,
        "user-agent": other,
    }
    standard_caps = {
        "webhook-id": config.max_id_bytes,
        "webhook-timestamp": other,
        "webhook-signature": other,
        "content-type": other,
        "user-agent": other,
    }

    # metric children, made at first use: labels() takes a lock and hashes its labels
    answered: dict[tuple[str, int], Any] = {}
    produced: dict[str, Any] = {}

    def answer(source: str, status: int, body: dict[str, Any], **headers: str) -> Response:
        counter = answered.get((source, status))
        if counter is None:
            counter = instruments.webhook_requests.labels(source, str(status))
            answered[(source, status)] = counter
        counter.inc()
        return JSONResponse(body, status_code=status, headers=headers or None)

    async def guarded(source: str, handle: Callable[[], Any]) -> Response:
        try:
            accepted = await handle()
        except WebhookError as exc:
            return answer(source, exc.status, {"error": exc.error, "reason": exc.reason})
        except SignatureError as exc:
            return answer(source, 401, {"error": f"signature_{exc.reason}", "reason": str(exc)})
        except RecordTooLargeError as exc:
            return answer(source, 413, {"error": "record_too_large", "reason": str(exc)})
        except BrokerUnavailableError as exc:
            log.warning("webhook from %s not landed: %s", source, exc)
            retry = str(config.retry_after_s)
            outcome = (
                "not landed"
                if exc.landed == "no"
                else "it may have landed; a retry with the same webhook id is harmless"
            )
            return answer(
                source,
                503,
                {"error": "broker_unavailable", "reason": f"{exc} ({outcome})"},
                **{"Retry-After": retry},
            )
        except ClientDisconnect:
            return answer(source, 400, {"error": "client_disconnected", "reason": "body cut off"})
        except Exception as exc:  # a bug: answered and counted like every other answer
            log.exception("webhook from %s failed unexpectedly", source)
            return answer(source, 500, {"error": "internal_error", "reason": type(exc).__name__})
        return answer(source, 200, {"status": "accepted", "id": accepted})

    async def land(
        sent: Mapping[str, str],
        vendor: str,
        source: str,
        webhook_id: str,
        body: bytes,
        key: str | None = None,
    ) -> None:
        received_ms = int(clock() * 1000)
        topic = raw_topics[vendor]
        headers = _kept_headers(sent, source, vendor, webhook_id, received_ms)
        await landing.land(RawRequest(topic, key or webhook_id, body, headers, received_ms))
        counter = produced.get(topic)
        if counter is None:
            counter = instruments.events_produced.labels(instruments.service, topic)
            produced[topic] = counter
        counter.inc()

    async def hubspot(request: Request) -> Response:
        async def handle() -> str:
            secret = config.hubspot.client_secret
            if secret is None:
                raise WebhookError(404, "unknown_source", "HubSpot is not configured")
            sent = _header_values(request)
            check_header_lengths(sent, hubspot_caps)
            body = await _read_body(request, config.max_body_bytes)
            try:
                uri = str(request.url)
                if config.public_url:
                    query = f"?{request.url.query}" if request.url.query else ""
                    uri = config.public_url.rstrip("/") + request.url.path + query
            except ValueError as exc:  # e.g. a Host header that is no host
                raise WebhookError(400, "bad_request", f"request URL is invalid: {exc}") from exc
            verify_hubspot_v3(
                secret.get_secret_value(),
                method=request.method,
                uri=uri,
                body=body,
                signature=sent.get("x-hubspot-signature-v3"),
                timestamp=sent.get("x-hubspot-request-timestamp"),
                now_ms=int(clock() * 1000),
                max_age_s=config.hubspot.max_age_s,
            )
            events = parse_json_body(body, config.max_json_depth)
            if not isinstance(events, list | dict):
                raise WebhookError(400, "malformed_json", "expected an array of events")
            first = events[0] if isinstance(events, list) and events else events
            event_id = _plain_id(first.get("eventId")) if isinstance(first, dict) else None
            webhook_id = _capped_id(
                event_id or hashlib.sha256(body).hexdigest(), "eventId", config.max_id_bytes
            )
            key = _hubspot_order_key(first)
            if key is not None:
                _capped_id(key, "the company id", config.max_id_bytes)
            await land(sent, "hubspot", "hubspot", webhook_id, body, key)
            return webhook_id

        return await guarded("hubspot", handle)

    async def standard(request: Request) -> Response:
        source = request.path_params["source"]

        async def handle() -> str:
            secret = config.standard.secrets.get(source)
            if secret is None:
                raise WebhookError(404, "unknown_source", f"no secret for source {source!r}")
            sent = _header_values(request)
            check_header_lengths(sent, standard_caps)
            body = await _read_body(request, config.max_body_bytes)
            verify_standard(
                secret.get_secret_value(),
                body,
                sent,
                now_s=clock(),
                tolerance_s=config.standard.tolerance_s,
            )
            check_json_body(body, config.max_json_depth)
            webhook_id = sent["webhook-id"]
            await land(sent, "standard", source, webhook_id, body)
            return webhook_id

        label = source if source in config.standard.secrets else "unknown"
        return await guarded(label, handle)

    async def healthz(_request: Request) -> Response:
        dead = service_health.liveness()
        if dead:
            return JSONResponse({"status": "dead", "reasons": dead}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        waiting = service_health.readiness()
        if waiting:
            return JSONResponse({"status": "not_ready", "reasons": waiting}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(instruments.registry), media_type=CONTENT_TYPE_LATEST)

    async def noop(request: Request) -> Response:
        await _read_body(request, config.max_body_bytes)
        return JSONResponse({"status": "ok"})

    routes = [
        Route("/webhooks/hubspot", hubspot, methods=["POST"]),
        Route("/webhooks/standard/{source}", standard, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if bare_endpoint:
        routes.append(Route("/bench/noop", noop, methods=["POST"]))
    return Starlette(routes=routes)
