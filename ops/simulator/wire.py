"""What goes on the wire: signed webhook requests and Debezium change envelopes, as pure functions.

Times are arguments (the driver passes the clock's reading), so the same action always gives
the same bytes for the same time.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from standardwebhooks import Webhook

from ops.simulator.conventions import HUBSPOT_PATH, STANDARD_PATH
from ops.simulator.scenario import ChangeAction, WebhookAction

__all__ = [
    "Dialect",
    "SignedRequest",
    "debezium_envelope",
    "debezium_key",
    "hubspot_body",
    "hubspot_v3_signature",
    "render_body",
    "sign_request",
    "standard_body",
]

#: How the simulated CRM speaks: HubSpot v3 webhooks, or the example Standard-Webhooks CRM.
Dialect = Literal["hubspot", "standard"]
_TRUNCATED = b'[{"eventId": 1, "subscriptionType": "company.propertyChange", "objectId": '


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A request ready for httpx: where, what, which headers."""

    url: str
    body: bytes
    headers: dict[str, str]


def hubspot_v3_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(secret, method + uri + body + timestamp)), as HubSpot signs v3."""
    message = method.upper().encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def hubspot_body(action: WebhookAction, occurred_ms: int) -> bytes:
    """The JSON array HubSpot posts: the action's events, stamped with ``occurredAt``."""
    if action.fault == "bad_json":
        return _TRUNCATED
    events = [{**e, "occurredAt": occurred_ms} for e in action.events]
    return orjson.dumps(events)


def _compact(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def _acme_message(event: dict[str, Any], iso: str) -> dict[str, Any] | None:
    """A HubSpot-shaped event as the example Standard-Webhooks CRM (``acme``) sends it."""
    kind = str(event.get("subscriptionType"))
    props = dict(event.get("properties") or {})
    if event.get("propertyName") is not None:
        props[str(event["propertyName"])] = event.get("propertyValue")
    oid = str(event.get("objectId"))
    company = event.get("associatedCompanyId")
    if kind.startswith("company."):
        data = {
            "id": oid,
            "name": props.get("name"),
            "domain": props.get("domain"),
            "phone": props.get("phone"),
        }
        created = kind.endswith("creation")
        return {"type": "company.created" if created else "company.updated", "data": _compact(data)}
    if kind.startswith("contact."):
        data = {
            "id": oid,
            "company_id": company,
            "first_name": props.get("firstname"),
            "last_name": props.get("lastname"),
            "email": props.get("email"),
        }
        return {"type": "contact.updated", "data": _compact(data)}
    if kind == "deal.propertyChange" and props.get("dealstage") == "closedwon":
        data = {
            "deal_id": oid,
            "company_id": company,
            "revision": event.get("quoteRevision", 1),
            "total": event.get("amount"),
            "currency": event.get("currency"),
            "accepted_at": iso,
            "lines": event.get("lines") or [],
        }
        return {"type": "quote.accepted", "data": data}
    if kind in ("deal.creation", "deal.propertyChange"):
        data = {
            "id": oid,
            "company_id": company,
            "revision": event.get("quoteRevision", 1),
            "name": props.get("dealname"),
            "amount": props.get("amount"),
            "currency": props.get("deal_currency_code"),
        }
        return {"type": "deal.updated", "data": _compact(data)}
    return None  # line items travel inside quote.accepted; withdrawals have no acme event


def standard_body(action: WebhookAction, occurred_ms: int) -> bytes | None:
    """One Standard Webhooks message ``{"type", "timestamp", "data"}``; None if not sent."""
    if action.fault == "bad_json":
        return _TRUNCATED
    iso = datetime.fromtimestamp(occurred_ms / 1000, UTC).isoformat()
    message = _acme_message(action.events[0], iso) if action.events else None
    if message is None:
        return None
    return orjson.dumps({**message, "timestamp": iso})


def render_body(action: WebhookAction, dialect: Dialect, occurred_ms: int) -> bytes | None:
    """The request body of ``action`` in ``dialect`` (None: the dialect has no such event)."""
    if dialect == "hubspot":
        return hubspot_body(action, occurred_ms)
    return standard_body(action, occurred_ms)


@functools.lru_cache(maxsize=16)
def _standard_webhook(secret: str) -> Webhook:
    """The signer of ``secret`` (made once: it decodes the key)."""
    return Webhook(secret)


def sign_request(
    action: WebhookAction,
    dialect: Dialect,
    body: bytes,
    *,
    base_url: str,
    now_ms: int,
    secret: str,
    source: str = "acme",
) -> SignedRequest:
    """Sign ``body`` the way the sender would; ``bad_signature`` faults get a wrong signature."""
    base = base_url.rstrip("/")
    wrong = action.fault == "bad_signature"
    if dialect == "hubspot":
        url = base + HUBSPOT_PATH
        stamp = str(now_ms)
        key = secret + ("-not-the-secret" if wrong else "")
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": hubspot_v3_signature(key, "POST", url, body, stamp),
            "X-HubSpot-Request-Timestamp": stamp,
        }
        return SignedRequest(url, body, headers)
    url = base + STANDARD_PATH.format(source=source)
    msg_id = f"msg_{action.delivery_id}"
    when = datetime.fromtimestamp(now_ms // 1000, UTC)
    signature = _standard_webhook(secret).sign(msg_id, when, body.decode("utf-8", "replace"))
    if wrong:
        signature = "v1," + base64.b64encode(b"\x00" * 32).decode()
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(now_ms // 1000),
        "webhook-signature": signature,
    }
    return SignedRequest(url, body, headers)


def debezium_key(change: ChangeAction) -> bytes:
    """The record key Debezium's JsonConverter (schemas disabled) writes: the primary key."""
    return orjson.dumps(change.key, option=orjson.OPT_SORT_KEYS)


def _stamp(row: dict[str, Any] | None, iso: str) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: (iso if k == "updated_at" and v is None else v) for k, v in row.items()}


def debezium_envelope(change: ChangeAction, ts_ms: int, db: str = "erp") -> bytes:
    """A Debezium Postgres change event, ``JsonConverter`` with ``schemas.enable=false``."""
    iso = datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat().replace("+00:00", "Z")
    payload = {
        "before": _stamp(change.before, iso),
        "after": _stamp(change.after, iso),
        "source": {
            "version": "2.7.0.Final",
            "connector": "postgresql",
            "name": db,
            "ts_ms": ts_ms,
            "snapshot": "false",
            "db": db,
            "schema": "public",
            "table": change.table,
            "txId": change.lsn,
            "lsn": change.lsn,
        },
        "op": change.op,
        "ts_ms": ts_ms,
        "transaction": None,
    }
    return orjson.dumps(payload, default=str, option=orjson.OPT_PASSTHROUGH_DATETIME)
