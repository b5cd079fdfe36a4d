"""API outages of the fake ERP and CRM, on a schedule: what an SRE's worst afternoon looks like.

``--fault erp:429:60@20`` makes the fake ERP answer every call with 429 and ``Retry-After`` for
60 seconds, from 20 seconds after the simulator started; ``crm:503:300@30`` takes the CRM down
for five minutes. The statuses are those the sinks must survive without dead-lettering work:
500 and 503 (down), 429 (throttled, with ``Retry-After``). The schedule is data, so a chaos
run (:mod:`ops.chaos`) and a test name the same outage the same way; the fakes' health endpoint
keeps answering, as a load balancer's would, so that only the API is out.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["ApiOutage", "OutageMiddleware", "parse_outage"]

Target = Literal["erp", "crm"]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

STATUSES = (429, 500, 502, 503)
RETRY_AFTER_S = 5
"""``Retry-After`` of a 429 (and of a 503): long enough that a sink honouring it is seen to."""
_SPEC = re.compile(r"^(erp|crm):(\d{3}):(\d+(?:\.\d+)?)@(\d+(?:\.\d+)?)$")
_SPARED = ("/healthz", "/readyz")


@dataclass(frozen=True)
class ApiOutage:
    """One fake API answering ``status`` to every call from ``at_s`` for ``for_s`` seconds."""

    target: Target
    status: int
    for_s: float
    at_s: float

    @property
    def until_s(self) -> float:
        return self.at_s + self.for_s

    def active(self, elapsed_s: float) -> bool:
        return self.at_s <= elapsed_s < self.until_s

    def spec(self) -> str:
        return f"{self.target}:{self.status}:{self.for_s:g}@{self.at_s:g}"


def parse_outage(text: str) -> ApiOutage:
    """``TARGET:STATUS:SECONDS@START`` (e.g. ``erp:429:60@20``) as an :class:`ApiOutage`.

    Raises:
        ValueError: not that form, or a status the fakes do not play.
    """
    found = _SPEC.match(text.strip())
    if found is None:
        raise ValueError(
            f"{text!r} is not TARGET:STATUS:SECONDS@START, e.g. erp:429:60@20 (TARGET erp or crm)"
        )
    target, status, for_s, at_s = found.groups()
    if int(status) not in STATUSES:
        known = ", ".join(map(str, STATUSES))
        raise ValueError(f"status {status} of {text!r} is not one of {known}")
    return ApiOutage(target, int(status), float(for_s), float(at_s))  # type: ignore[arg-type]


class OutageMiddleware:
    """Answers the scheduled status instead of ``app`` while an outage of ``target`` lasts."""

    def __init__(
        self,
        app: App,
        target: Target,
        outages: Sequence[ApiOutage],
        elapsed: Callable[[], float],
        on_refused: Callable[[int], None] | None = None,
    ) -> None:
        self.app = app
        self.outages = tuple(o for o in outages if o.target == target)
        self.elapsed = elapsed
        self.on_refused = on_refused

    def status_now(self) -> int | None:
        now = self.elapsed()
        return next((o.status for o in self.outages if o.active(now)), None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = self.status_now() if scope["type"] == "http" else None
        if status is None or scope.get("path") in _SPARED:
            await self.app(scope, receive, send)
            return
        if self.on_refused is not None:
            self.on_refused(status)
        headers = [(b"content-type", b"application/json")]
        if status in (429, 503):
            headers.append((b"retry-after", str(RETRY_AFTER_S).encode()))
        body = b'{"error": "scheduled outage"}'
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
