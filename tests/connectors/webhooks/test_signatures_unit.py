"""Standard Webhooks verification: what the official ``standardwebhooks`` package accepts."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from connectors.webhooks.signatures import STANDARD_MAX_SKEW_S, SignatureError, verify_standard

pytestmark = pytest.mark.unit
SECRET = "whsec_" + base64.b64encode(b"signature-test-secret").decode()
NOW = 1_700_000_000
BODY = b'{"type": "company.updated", "data": {"id": "c-1"}}'


def _headers(msg_id: str = "msg_1", stamp: int = NOW, body: bytes = BODY) -> dict[str, str]:
    when = datetime.fromtimestamp(stamp, UTC)
    signature = Webhook(SECRET).sign(msg_id, when, body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}


def _verify(headers: dict[str, str], body: bytes = BODY, tolerance_s: float = 300) -> None:
    verify_standard(SECRET, body, headers, now_s=NOW, tolerance_s=tolerance_s)


def test_the_packages_signature_verifies_and_tampering_does_not() -> None:
    _verify(_headers())
    with pytest.raises(SignatureError, match="No matching signature") as err:
        _verify(_headers(), BODY.replace(b"c-1", b"c-2"))
    assert err.value.reason == "invalid"
    with pytest.raises(SignatureError) as err:
        _verify({**_headers(), "webhook-id": "msg_2"})
    assert err.value.reason == "invalid"


def test_a_signature_list_needs_one_v1_match_and_is_refused_whole_when_malformed() -> None:
    valid = _headers()["webhook-signature"]
    _verify({**_headers(), "webhook-signature": f"v2,AAAA {valid}"})
    malformed = {**_headers(), "webhook-signature": f"garbage {valid}"}
    with pytest.raises(SignatureError, match="malformed"):
        _verify(malformed)
    with pytest.raises(WebhookVerificationError):  # the package refuses the same list
        Webhook(SECRET).verify(BODY.decode(), malformed)


def test_the_packages_five_minute_window_holds_whatever_the_tolerance() -> None:
    stamp = NOW - int(STANDARD_MAX_SKEW_S) - 1
    with pytest.raises(SignatureError, match="too old") as err:
        _verify(_headers(stamp=stamp), tolerance_s=3600)
    assert err.value.reason == "stale"
    with pytest.raises(SignatureError, match="more than 60 s off"):
        _verify(_headers(stamp=NOW - 61), tolerance_s=60)


def test_a_body_that_is_not_utf8_is_verified_over_its_bytes() -> None:
    body = b'{"name": "\xff"}'  # the package cannot sign it: it signs text
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, f"msg_1.{NOW}.".encode() + body, hashlib.sha256).digest()
    headers = {**_headers(), "webhook-signature": "v1," + base64.b64encode(digest).decode()}
    _verify(headers, body)
    with pytest.raises(SignatureError):
        _verify(headers, b'{"name": "\xfe"}')
