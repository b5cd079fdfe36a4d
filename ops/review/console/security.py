"""The console's guards: who is signed in, CSRF tokens, bounded form bodies, security headers.

Sessions are Starlette's signed cookie (itsdangerous; HttpOnly, SameSite=Lax, Secure behind
TLS) holding only the user name and the session's CSRF token. Every form carries that token;
a POST without a session, or whose token does not match, is refused with 403 before anything
else is read. Forms are parsed here from a body capped in size (no multipart: the console's
forms are URL-encoded), so a large or malformed body is a 4xx, never a 5xx.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "FormError",
    "SecurityHeaders",
    "SignInThrottle",
    "csrf_token",
    "form_value",
    "read_form",
    "rotate_session",
    "safe_next",
]

MAX_FORM_BYTES = 16 * 1024
MAX_FIELDS = 16

_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


class FormError(Exception):
    """A form the console refuses: ``status`` (403, 413, 400) and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created with the session on the first page it sees."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def rotate_session(request: Request, user: str) -> None:
    """A new session for ``user`` on sign-in: nothing from before survives (no fixation)."""
    request.session.clear()
    request.session["user"] = user
    request.session["csrf"] = secrets.token_urlsafe(32)


async def read_form(request: Request) -> dict[str, str]:
    """The URL-encoded form of a POST, once its session and CSRF token are checked.

    Raises:
        FormError: 403 without a session or with a wrong token, 413 over the size cap, 400 a
            body that is not a UTF-8 URL-encoded form.
    """
    expected = request.session.get("csrf")
    if not isinstance(expected, str):
        raise FormError(403, "no session: open the page again and resubmit")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormError(413, f"form over {MAX_FORM_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormError(413, f"form over {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError(400, f"not a form: {exc}") from exc
    form = dict(pairs)
    given = form.get("csrf", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise FormError(403, "the form's CSRF token does not match this session")
    return form


def safe_next(target: str | None, default: str = "/queue") -> str:
    """Where to go after sign-in: a path on this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


class SecurityHeaders:
    """ASGI middleware adding CSP (no scripts at all), no framing, no sniffing, no caching."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in _HEADERS if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def form_value(form: Mapping[str, str], name: str, limit: int = 2000) -> str | None:
    """A trimmed form field, None when empty; over ``limit`` characters is a 400."""
    value = form.get(name, "").strip()
    if len(value) > limit:
        raise FormError(400, f"{name} is longer than {limit} characters")
    return value or None


class SignInThrottle:
    """Refuses sign-in for a user name after ``max_failures`` wrong passwords within
    ``window_s``, until the oldest of them is ``window_s`` old: guessing a password online
    becomes slow, while a person who mistyped waits at most the window."""

    def __init__(
        self,
        max_failures: int = 5,
        window_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_names: int = 10_000,
    ) -> None:
        self._max = max_failures
        self._window = window_s
        self._clock = clock
        self._max_names = max_names
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, name: str, now: float) -> list[float]:
        kept = [t for t in self._failures.get(name, []) if now - t < self._window]
        if kept:
            self._failures[name] = kept
        else:
            self._failures.pop(name, None)
        return kept

    def wait_s(self, name: str) -> float:
        """Seconds until ``name`` may try again (0: now)."""
        with self._lock:
            now = self._clock()
            recent = self._recent(name, now)
            if len(recent) < self._max:
                return 0.0
            return max(0.0, recent[-self._max] + self._window - now)

    def failed(self, name: str) -> None:
        """Count a wrong password for ``name``."""
        with self._lock:
            now = self._clock()
            if name not in self._failures and len(self._failures) >= self._max_names:
                for old in [n for n in self._failures if not self._recent(n, now)]:
                    self._failures.pop(old, None)
                if len(self._failures) >= self._max_names:
                    self._failures.pop(next(iter(self._failures)))
            self._failures.setdefault(name, []).append(now)

    def succeeded(self, name: str) -> None:
        """A good password: the count starts again."""
        with self._lock:
            self._failures.pop(name, None)
