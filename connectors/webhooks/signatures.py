"""Request signatures of the webhook senders, verified in constant time against our secrets.

HubSpot v3: ``X-HubSpot-Signature-v3`` = base64(HMAC-SHA256(client secret, method + URI + body +
``X-HubSpot-Request-Timestamp``)); requests older than ``max_age_s`` are refused. Standard
Webhooks: ``v1`` = base64(HMAC-SHA256(key, ``{webhook-id}.{webhook-timestamp}.{body}``)), the key
derived from the ``whsec_`` secret as the official ``standardwebhooks`` package does (and with
its limits: a timestamp more than five minutes off is refused whatever ``tolerance_s`` says, a
malformed signature list is refused whole); computed over the body's bytes, with the key decoded
once per secret rather than per request.
"""

from __future__ import annotations

import base64
import functools
import hmac
from collections.abc import Mapping
from typing import Literal

from standardwebhooks.webhooks import EmptyWebhookSecretError

__all__ = [
    "STANDARD_MAX_SKEW_S",
    "SignatureError",
    "hubspot_v3_signature",
    "verify_hubspot_v3",
    "verify_standard",
]


STANDARD_MAX_SKEW_S = 300.0
"""The ``standardwebhooks`` libraries' fixed timestamp window: no tolerance can widen it."""


class SignatureError(Exception):
    """The request is not provably from the sender: wrong, missing or stale signature (401)."""

    def __init__(self, reason: Literal["missing", "invalid", "stale"], message: str) -> None:
        super().__init__(message)
        self.reason = reason


def hubspot_v3_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The v3 signature HubSpot sends for this request (also what a test client signs with)."""
    message = method.upper().encode() + uri.encode() + body + timestamp.encode()
    digest = hmac.digest(secret.encode(), message, "sha256")
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
    """Raise :class:`SignatureError` unless a ``v1`` signature matches and the time is fresh.

    Args:
        headers: the request's headers by lower-case name.
    """
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
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
    if skew > STANDARD_MAX_SKEW_S:
        direction = "old" if sent < now_s else "new"
        raise SignatureError("stale", f"webhook-signature: Message timestamp too {direction}")
    try:
        key = _standard_key(secret)
    except ValueError as exc:  # a secret that is not base64
        raise SignatureError("invalid", f"webhook-signature is malformed: {exc}") from exc
    # The spec signs "{id}.{timestamp}.{body}" as bytes: a body that is not UTF-8 is verified
    # too (and refused as not UTF-8 later, a 400 rather than a 401).
    signed = f"{msg_id}.{sent}.".encode() + body
    expected = hmac.digest(key, signed, "sha256")  # one-shot: no HMAC object per request
    for candidate in signatures.split(" "):
        parts = candidate.split(",")
        if len(parts) != 2:
            raise SignatureError("invalid", f"webhook-signature is malformed: {candidate!r}")
        version, encoded = parts
        if version != "v1":
            continue
        try:
            given = base64.b64decode(encoded)
        except ValueError as exc:
            raise SignatureError("invalid", f"webhook-signature is malformed: {exc}") from exc
        if hmac.compare_digest(expected, given):
            return
    raise SignatureError("invalid", "webhook-signature: No matching signature found")


@functools.lru_cache(maxsize=256)
def _standard_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (the ``standardwebhooks`` derivation)."""
    key = base64.b64decode(secret.removeprefix("whsec_") + "==")
    if not key:
        raise EmptyWebhookSecretError("webhook secret may not be empty")
    return key
