"""The console's HTTP routes: thin handlers over the case store, the views and the sender.

Pages: ``/login`` (GET form, POST sign-in), ``/logout`` (POST), ``/queue``, ``/cases/{id}``
and ``POST /cases/{id}/decide``. API for scripts, with ``Authorization: Bearer <token>``:
``GET /api/cases``, ``GET /api/cases/{id}``, ``POST /api/cases/{id}/decisions`` (JSON).
Probes: ``/healthz`` (the case store's reader runs) and ``/readyz`` (it caught up with
``review.cases`` and Kafka takes decisions). A page without a signed-in user redirects to the
sign-in; the API answers 401 without a valid token; every error is a 4xx page or JSON, except
503 while Kafka does not acknowledge a decision.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from contracts.review import (
    ACTIONS,
    SEVERITIES,
    Case,
    Decision,
    DecisionNotAllowedError,
    decision_for,
)
from interlock.settings import ConsoleSettings
from ops.review.console.security import (
    FormError,
    SecurityHeaders,
    SignInThrottle,
    csrf_token,
    form_value,
    read_form,
    rotate_session,
    safe_next,
)
from ops.review.console.views import (
    AGE_CHOICES,
    STATUS_CHOICES,
    BadQueryError,
    case_view,
    parse_queue_query,
    queue_rows,
)
from ops.review.store import DecisionNotDeliveredError
from ops.review.users import User, Users, can_decide

__all__ = ["CaseSource", "ConsoleState", "DecisionSink", "create_app"]

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
_SENT_KEPT = 10_000


class CaseSource(Protocol):
    """Where the console reads cases (:class:`ops.review.store.CaseStore`)."""

    problem: str | None

    def cases(self) -> dict[str, Case]: ...

    def get(self, case_id: str) -> Case | None: ...

    def running(self) -> bool: ...

    def is_caught_up(self) -> bool: ...


class DecisionSink(Protocol):
    """Where the console writes decisions (:class:`ops.review.store.DecisionSender`)."""

    def send(self, decision: Decision) -> None: ...

    def problem(self) -> str | None: ...


@dataclass
class ConsoleState:
    """What the handlers share: the store, the sender, the users and the decisions sent."""

    store: CaseSource
    sender: DecisionSink
    users: Users
    clock: Callable[[], float] = time.time
    sent: OrderedDict[str, Decision] = field(default_factory=OrderedDict)
    throttle: SignInThrottle = field(default_factory=SignInThrottle)

    def remember(self, decision: Decision) -> None:
        """Keep the last decision sent per case, to show it pending until it is applied."""
        self.sent[decision.case_id] = decision
        self.sent.move_to_end(decision.case_id)
        while len(self.sent) > _SENT_KEPT:
            self.sent.popitem(last=False)


def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,  # CRM data is untrusted: everything shown is escaped
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def create_app(state: ConsoleState, config: ConsoleSettings, secret_key: str) -> Starlette:
    """The console app; ``secret_key`` signs the session cookie."""
    env = _templates()

    def render(request: Request, template: str, code: int = 200, /, **context: Any) -> HTMLResponse:
        page = env.get_template(template).render(
            user=_user(request), csrf=csrf_token(request), **context
        )
        return HTMLResponse(page, status_code=code)

    def _user(request: Request) -> User | None:
        name = request.session.get("user")
        return state.users.get(name) if isinstance(name, str) else None

    def error_page(request: Request, status: int, message: str) -> HTMLResponse:
        return render(request, "error.html", status, status=status, message=message)

    def sign_in_first(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)

    async def login_form(request: Request) -> Response:
        nxt = safe_next(request.query_params.get("next"))
        if _user(request) is not None:
            return RedirectResponse(nxt, status_code=303)
        return render(request, "login.html", next=nxt, error=None, name="")

    async def login(request: Request) -> Response:
        try:
            form = await read_form(request)
        except FormError as exc:
            return error_page(request, exc.status, exc.message)
        name = (form.get("name") or "").strip()[:200]
        password = form.get("password") or ""
        nxt = safe_next(form.get("next"))
        wait = state.throttle.wait_s(name)
        if wait > 0:
            error = f"Too many wrong passwords: try again in {wait:.0f} s."
            return render(request, "login.html", 429, next=nxt, error=error, name=name)
        user = await run_in_threadpool(state.users.authenticate, name, password[:1024])
        if user is None:
            state.throttle.failed(name)
            error = "Wrong user name or password."
            return render(request, "login.html", 401, next=nxt, error=error, name=name)
        state.throttle.succeeded(name)
        rotate_session(request, user.name)
        log.info("console sign-in: %s (%s)", user.name, user.role)
        return RedirectResponse(nxt, status_code=303)

    async def logout(request: Request) -> Response:
        try:
            await read_form(request)
        except FormError as exc:
            return error_page(request, exc.status, exc.message)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    async def home(request: Request) -> Response:
        return RedirectResponse("/queue", status_code=303)

    async def queue(request: Request) -> Response:
        user = _user(request)
        if user is None:
            return sign_in_first(request)
        try:
            query = parse_queue_query(request.query_params, user)
        except BadQueryError as exc:
            return error_page(request, 400, str(exc))
        cases = state.store.cases()
        teams = sorted({c.team for c in cases.values()} | set(user.teams))
        return render(
            request,
            "queue.html",
            rows=queue_rows(cases.values(), query.where, state.clock()),
            query=query,
            teams=teams,
            severities=SEVERITIES,
            ages=AGE_CHOICES,
            statuses=list(STATUS_CHOICES),
            total=len(cases),
            caught_up=state.store.is_caught_up(),
        )

    async def case_page(request: Request) -> Response:
        user = _user(request)
        if user is None:
            return sign_in_first(request)
        case = state.store.get(request.path_params["case_id"])
        if case is None:
            return error_page(request, 404, "No such case (yet): it may still be on its way.")
        view = case_view(case, user, state.clock(), state.sent.get(case.case_id))
        return render(request, "case.html", view=view, error=None)

    async def decide(request: Request) -> Response:
        try:
            form = await read_form(request)
            user = _user(request)
            if user is None:
                raise FormError(403, "sign in to decide")
            action = form_value(form, "action", 20) or ""
            fields = {
                "reason": form_value(form, "reason"),
                "assignee": form_value(form, "assignee", 200),
                "target": form_value(form, "target", 200),
            }
        except FormError as exc:
            return error_page(request, exc.status, exc.message)
        case = state.store.get(request.path_params["case_id"])
        if case is None:
            return error_page(request, 404, "No such case.")
        outcome = await _decide(user, case, action, fields)
        if isinstance(outcome, Decision):
            return RedirectResponse(f"/cases/{case.case_id}", status_code=303)
        status, message = outcome
        view = case_view(case, user, state.clock(), state.sent.get(case.case_id))
        return render(request, "case.html", status, view=view, error=message)

    async def _decide(
        user: User, case: Case, action: str, fields: dict[str, str | None]
    ) -> Decision | tuple[int, str]:
        """The decision sent, or (status, why not)."""
        if action not in ACTIONS:
            return 400, f"Unknown action {action!r}."
        if not can_decide(user, case):
            why = "a viewer" if user.role == "viewer" else f"not in team {case.team}"
            return 403, f"You may not decide this case ({why})."
        try:
            decision = decision_for(case, action, user.name, state.clock(), **fields)
        except DecisionNotAllowedError as exc:
            return 409, str(exc)
        try:
            await run_in_threadpool(state.sender.send, decision)
        except DecisionNotDeliveredError as exc:
            return 503, f"Not sent: {exc}"
        state.remember(decision)
        log.info("decision %s: %s %s by %s", decision.decision_id, action, case.case_id, user.name)
        return decision

    def _token_user(request: Request) -> User | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return state.users.by_token(token.strip())

    def _unauthorized() -> JSONResponse:
        return JSONResponse(
            {"error": "unauthorized", "reason": "send Authorization: Bearer <token>"},
            status_code=401,
            headers={"www-authenticate": "Bearer"},
        )

    async def api_cases(request: Request) -> Response:
        user = _token_user(request)
        if user is None:
            return _unauthorized()
        params = {"team": "all", **request.query_params}
        try:
            query = parse_queue_query(params, user)
        except BadQueryError as exc:
            return JSONResponse({"error": "bad_query", "reason": str(exc)}, status_code=400)
        from ops.review.queue import select_cases

        chosen = select_cases(state.store.cases().values(), query.where, state.clock())
        return JSONResponse([c.model_dump(mode="json") for c in chosen])

    async def api_case(request: Request) -> Response:
        if _token_user(request) is None:
            return _unauthorized()
        case = state.store.get(request.path_params["case_id"])
        if case is None:
            return JSONResponse({"error": "not_found", "reason": "no such case"}, 404)
        return JSONResponse(case.model_dump(mode="json"))

    async def api_decide(request: Request) -> Response:
        user = _token_user(request)
        if user is None:
            return _unauthorized()
        body = await request.body()
        try:
            doc = json.loads(body) if len(body) <= 16 * 1024 else None
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not all(
            isinstance(doc.get(k), str | None) for k in ("action", "reason", "assignee", "target")
        ):
            return JSONResponse(
                {"error": "bad_request", "reason": "a JSON object {action, reason?, ...}"}, 400
            )
        case = state.store.get(request.path_params["case_id"])
        if case is None:
            return JSONResponse({"error": "not_found", "reason": "no such case"}, 404)
        fields = {k: doc.get(k) for k in ("reason", "assignee", "target")}
        outcome = await _decide(user, case, str(doc.get("action") or ""), fields)
        if isinstance(outcome, Decision):
            return JSONResponse(outcome.model_dump(mode="json"), status_code=202)
        status, message = outcome
        return JSONResponse({"error": "refused", "reason": message}, status_code=status)

    async def healthz(_request: Request) -> Response:
        if not state.store.running():
            return JSONResponse({"status": "dead", "reasons": ["the case store stopped"]}, 503)
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        reasons = []
        if not state.store.is_caught_up():
            reasons.append(f"case store: {state.store.problem or 'reading review.cases'}")
        why = await run_in_threadpool(state.sender.problem)
        if why is not None:
            reasons.append(f"decisions: {why}")
        if reasons:
            return JSONResponse({"status": "not_ready", "reasons": reasons}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def not_found(request: Request, _exc: Exception) -> Response:
        return error_page(request, 404, "No such page.")

    routes = [
        Route("/", home),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/queue", queue),
        Route("/cases/{case_id}", case_page),
        Route("/cases/{case_id}/decide", decide, methods=["POST"]),
        Route("/api/cases", api_cases),
        Route("/api/cases/{case_id}", api_case),
        Route("/api/cases/{case_id}/decisions", api_decide, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=secret_key,
            session_cookie="interlock_console",
            max_age=config.session_max_age_s,
            same_site="lax",
            https_only=config.https_only,
        ),
    ]
    return Starlette(routes=routes, middleware=middleware, exception_handlers={404: not_found})


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")
