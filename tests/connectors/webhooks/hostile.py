"""Hostile webhook requests from a seeded random source: bodies, headers, depths, encodings.

One generator serves the property test (hypothesis hands it a ``random.Random`` it controls and
shrinks) and the load test (a plain seeded one). Each request says whether it is validly signed
and fresh (``signed``): only such a request may land, and only if its body is UTF-8 JSON within
the caps and its ids are short enough.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
from dataclasses import dataclass

from connectors.webhooks.signatures import hubspot_v3_signature
from tests.connectors.webhooks.conftest import HUBSPOT_SECRET, STANDARD_SECRET

__all__ = ["HostileRequest", "hostile_request"]

# Bytes a header value may hold on the wire (h11 refuses the rest before sending).
_HEADER_BYTES = bytes([*range(0x21, 0x7F), *range(0x80, 0x100)])


@dataclass(frozen=True)
class HostileRequest:
    path: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    signed: bool
    """Validly signed with the configured secret and fresh: may land if well-formed."""


def _header_value(rng: random.Random, size: int) -> bytes:
    raw = bytes(rng.choice(_HEADER_BYTES) for _ in range(min(size, 64)))
    return (raw * (size // max(1, len(raw)) + 1))[:size] if size else b"x"


def _json_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(9 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**63, -(2**64), rng.randrange(-(10**30), 10**30)])
    if kind == 3:
        return rng.choice([0.5, -1e308, 1e-300, float("nan"), float("inf")])
    if kind == 4:
        return "".join(
            rng.choice('aZ09 "\\/[]{}\u00e9\u20ac\U0001f600\ud800\x00\n')
            for _ in range(rng.randrange(12))
        )
    if kind in (5, 6):
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {
        rng.choice(["eventId", "objectId", "subscriptionType", "type", "data", "id", "x"]): (
            _json_value(rng, depth + 1)
        )
        for _ in range(rng.randrange(5))
    }


def _body(rng: random.Random) -> bytes:
    kind = rng.randrange(12)
    if kind == 0:  # what a CRM sends
        return json.dumps(
            {
                "type": "company.updated",
                "timestamp": "2024-05-01T10:00:00Z",
                "data": {"id": f"c-{rng.randrange(10**6)}", "name": "Hostile GmbH"},
            }
        ).encode()
    if kind == 1:  # a HubSpot-shaped array with odd ids
        event = {
            "eventId": rng.choice(
                [rng.randrange(10**9), "e" * rng.randrange(1, 600), [1], {}, True, None, 1.5]
            ),
            "subscriptionType": rng.choice(["company.propertyChange", "deal.creation", 7, None]),
            "objectId": rng.choice([rng.randrange(10**6), "o" * rng.randrange(1, 400), [], None]),
            "associatedCompanyId": rng.choice([1, "x" * 300, {"a": 1}, None]),
        }
        return json.dumps([event], allow_nan=True).encode()
    if kind == 2:  # nested: near, at and past the depth cap, and far past the recursion limit
        depth = rng.choice([1, 30, 63, 64, 65, 500, 999, 1000, 1001, 3000, 20_000])
        opener, closer = rng.choice([("[", "]"), ('{"a":', "}"), ('[{"a":', "}]")])
        tail = rng.choice(["", closer * depth, closer * (depth // 2)])
        return (opener * depth + "1" + tail).encode()
    if kind == 3:  # random bytes
        return rng.randbytes(rng.randrange(0, 3000))
    if kind == 4:  # JSON text in another encoding
        text = json.dumps({"name": "Müller €", "n": rng.randrange(100)}, ensure_ascii=False)
        encoding = rng.choice(["utf-16", "utf-32", "latin-1", "cp1252", "utf-8-sig", "utf-16-be"])
        return text.encode(encoding, errors="replace")
    if kind == 5:  # broken UTF-8 inside otherwise good JSON
        return (
            b'{"name": "'
            + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
            + b'"}'
        )
    if kind == 6:  # numbers Python refuses or turns into floats
        return rng.choice(
            [b"1" * 5000, b"[1e999]", b"[-1e999]", b"NaN", b"[Infinity]", b"1" * 4300]
        )
    if kind == 7:  # truncated or unterminated
        good = json.dumps(_json_value(rng), allow_nan=True).encode()
        return good[: rng.randrange(len(good) + 1)] + rng.choice([b"", b'"', b"\\", b'"\\'])
    if kind == 8:  # large, near the body cap
        return json.dumps({"data": "x" * rng.randrange(1000, 70_000)}).encode()
    if kind == 9:
        return b""
    return json.dumps(_json_value(rng), allow_nan=True).encode("utf-8", errors="surrogatepass")


def _standard_signature(secret: str, msg_id: bytes, stamp: bytes, body: bytes) -> bytes:
    key = base64.b64decode(secret.removeprefix("whsec_") + "==")
    digest = hmac.new(key, msg_id + b"." + stamp + b"." + body, hashlib.sha256).digest()
    return b"v1," + base64.b64encode(digest)


def hostile_request(rng: random.Random, base_url: str, now: float | None = None) -> HostileRequest:
    """One request to one of the receiver's routes, signed well or badly or not at all."""
    now = time.time() if now is None else now
    body = _body(rng)
    route = rng.choice(["hubspot", "hubspot", "acme", "acme", "acme", "nobody"])
    if rng.random() < 0.03:
        route = rng.choice(["../acme", "%2e%2e", "ACME", "acme%00"])
    sign = rng.choice(["valid", "valid", "valid", "wrong_secret", "garbage", "missing", "stale"])
    headers: list[tuple[bytes, bytes]] = []
    content_type = rng.choice(
        [b"application/json", b"text/plain; charset=latin-1", b"application/json; charset=utf-16"]
    )
    headers.append((b"content-type", content_type))
    stamp_s = now - (3600 if sign == "stale" else rng.uniform(0, 30))
    if route == "hubspot":
        path = "/webhooks/hubspot"
        stamp = str(int(stamp_s * 1000)).encode()
        secret = HUBSPOT_SECRET if sign != "wrong_secret" else "not-the-secret"
        signature = hubspot_v3_signature(secret, "POST", base_url + path, body, stamp.decode())
        sig_name, stamp_name = b"x-hubspot-signature-v3", b"x-hubspot-request-timestamp"
        sig_value = signature.encode()
    else:
        path = f"/webhooks/standard/{route}"
        msg_id = rng.choice(
            [
                f"msg_{rng.randrange(10**12)}".encode(),
                _header_value(rng, rng.choice([1, 255, 256, 257, 5000, 100_000])),
            ]
        )
        stamp = rng.choice(
            [
                str(int(stamp_s)).encode(),
                str(int(stamp_s)).encode(),
                b"9" * 400,
                b"-1",
                b"1e9",
                b"\xff12",
            ]
        )
        headers.append((b"webhook-id", msg_id))
        secret = (
            STANDARD_SECRET
            if sign != "wrong_secret"
            else "whsec_" + base64.b64encode(b"nope" * 6).decode()
        )
        sig_name, stamp_name = b"webhook-signature", b"webhook-timestamp"
        sig_value = _standard_signature(secret, msg_id, stamp, body)
        if rng.random() < 0.1:  # several signatures, as during a key rotation
            sig_value = b" ".join(
                [_standard_signature(secret, b"x", stamp, body), sig_value] * rng.choice([1, 2, 40])
            )
    if sign == "garbage":
        sig_value = rng.choice(
            [b"v1,", b"v1,!!!", b"v2,abc", _header_value(rng, rng.choice([3, 50, 2000])), b"v1"]
        )
    if sign != "missing":
        headers.append((sig_name, sig_value))
    headers.append((stamp_name, stamp))
    if rng.random() < 0.2:
        headers.append((b"user-agent", _header_value(rng, rng.choice([10, 1024, 1025, 20_000]))))
    if rng.random() < 0.1:
        headers.append((rng.choice([b"x-extra", b"content-type"]), _header_value(rng, 40)))
    fresh_stamp = (
        stamp.isdigit()
        and len(stamp) < 16
        and abs(int(stamp) / (1000 if route == "hubspot" else 1) - now) < 60
    )
    signed = sign == "valid" and fresh_stamp and route in ("hubspot", "acme")
    return HostileRequest(path, headers, body, signed)
