"""Request signatures of the webhook senders, verified in constant time against our secrets.

HubSpot v3: ``X-HubSpot-Signature-v3`` = base64(HMAC-SHA256(client secret, method + URI + body +
``X-HubSpot-Request-Timestamp``)); requests older than ``max_age_s`` are refused. Standard
Webhooks: verified with the official ``standardwebhooks`` package after our own timestamp check
(whose tolerance is configurable; the package's own is fixed at five minutes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Literal

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = [
    "SignatureError",
    "hubspot_v3_signature",
    "verify_hubspot_v3",
    "verify_standard",
]


class SignatureError(Exception):
    """The request is not provably from the sender: wrong, missing or stale signature (401)."""

    def __init__(self, reason: Literal["missing", "invalid", "stale"], message: str) -> None:
        super().__init__(message)
        self.reason = reason


def hubspot_v3_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The v3 signature HubSpot sends for this request (also what a test client signs with)."""
    message = method.upper().encode() + uri.encode() + body + timestamp.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_hubspot_v3(
    secret: str,
    *,
    method: str,
    uri: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now_ms: int,
    max_age_s: float,
) -> None:
    """Raise :class:`SignatureError` unless the request is signed with ``secret`` and fresh."""
    if not signature or not timestamp:
        raise SignatureError("missing", "X-HubSpot-Signature-v3 or its timestamp is missing")
    try:
        sent_ms = int(timestamp)
    except ValueError as exc:
        raise SignatureError("invalid", "X-HubSpot-Request-Timestamp is not epoch ms") from exc
    if now_ms - sent_ms > max_age_s * 1000:
        raise SignatureError("stale", f"request is older than {max_age_s:.0f} s")
    expected = hubspot_v3_signature(secret, method, uri, body, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise SignatureError("invalid", "X-HubSpot-Signature-v3 does not match")


def verify_standard(
    secret: str, body: bytes, headers: Mapping[str, str], *, now_s: float, tolerance_s: float
) -> None:
    """Raise :class:`SignatureError` unless a ``v1`` signature matches and the time is fresh."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    if not msg_id or not stamp or not headers.get("webhook-signature"):
        raise SignatureError("missing", "webhook-id, -timestamp or -signature missing")
    try:
        sent = int(stamp)
        skew = abs(now_s - sent)
    except ValueError as exc:
        raise SignatureError("invalid", "webhook-timestamp is not epoch seconds") from exc
    except OverflowError:  # more digits than a float holds: centuries away
        skew = float("inf")
    if skew > tolerance_s:
        raise SignatureError("stale", f"webhook-timestamp is more than {tolerance_s:.0f} s off")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        # Not a signature problem: verified over the bytes here, refused as not UTF-8 later.
        _verify_standard_bytes(secret, body, msg_id, sent, headers.get("webhook-signature", ""))
        return
    try:
        Webhook(secret).verify(text, dict(headers), json_parse=False)
    except WebhookVerificationError as exc:
        kind: Literal["stale", "invalid"] = "stale" if "timestamp" in str(exc) else "invalid"
        raise SignatureError(kind, f"webhook-signature: {exc}") from exc
    except ValueError as exc:  # malformed "v1,<b64>"
        raise SignatureError("invalid", f"webhook-signature is malformed: {exc}") from exc


def _verify_standard_bytes(
    secret: str, body: bytes, msg_id: str, sent: int, signatures: str
) -> None:
    """The Standard Webhooks ``v1`` check over a body that is not text.

    The spec signs ``{id}.{timestamp}.{body}`` as bytes; the ``standardwebhooks`` package
    decodes the body as UTF-8 first, so it cannot verify such a body. Same key derivation and
    comparison as the package.
    """
    key = base64.b64decode(secret.removeprefix("whsec_") + "==")
    signed = f"{msg_id}.{sent}.".encode() + body
    expected = hmac.new(key, signed, hashlib.sha256).digest()
    for candidate in signatures.split(" "):
        version, _, encoded = candidate.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(encoded)
        except ValueError as exc:
            raise SignatureError("invalid", f"webhook-signature is malformed: {exc}") from exc
        if hmac.compare_digest(expected, given):
            return
    raise SignatureError("invalid", "webhook-signature: No matching signature found")
