"""The simulated CRM API: records the write-backs the sinks send, and sends back their echo.

A real CRM notifies its webhook subscribers of every change, including the ones an integration
made through its API, marking them as such (HubSpot: ``changeSource: "INTEGRATION"`` and the
app id as ``sourceId``). The echo is what Interlock must recognise and not propagate again.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ops.simulator.conventions import ECHO_CHANGE_SOURCE
from ops.simulator.hot_routes import Answer, HotRoute, HotRoutes
from ops.simulator.scenario import WebhookAction
from ops.simulator.truth import CrmCall, DriftCase, DriftInjected, Recorded

__all__ = ["CrmDesk", "create_crm_app", "echo_action"]

EchoSink = Callable[[WebhookAction], None]


def echo_action(
    delivery_id: str,
    event_id: int,
    deal_id: str,
    company_id: str | None,
    written: Mapping[str, Any],
    app_id: str,
) -> WebhookAction:
    """The webhook the CRM sends after our write-back: one property change per written field."""
    events = tuple(
        {
            "eventId": event_id * 100 + i,
            "portalId": 62515,
            "subscriptionType": "deal.propertyChange",
            "objectId": int(deal_id) if deal_id.isdigit() else deal_id,
            "propertyName": f"erp_{name}" if not name.startswith("erp_") else name,
            "propertyValue": value if isinstance(value, str) else json.dumps(value),
            "changeSource": ECHO_CHANGE_SOURCE,
            "sourceId": app_id,
            "associatedCompanyId": company_id,
        }
        for i, (name, value) in enumerate(sorted(written.items()))
        if name in ("status", "erp_order_number", "promised_date", "credit_hold", "status_reason")
    )
    return WebhookAction(delivery_id, events)


class CrmDesk:
    """State of the fake CRM: deals known from the scenario, calls received, echoes sent."""

    def __init__(
        self,
        recorded: Recorded,
        echo: EchoSink,
        app_id: str,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.recorded = recorded
        self._wall = wall
        self._echo = echo
        self.app_id = app_id
        self._deal_company: dict[str, str] = {}
        self._deals: dict[str, dict[str, Any]] = {}
        self._keys: set[str] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._lose: dict[str, DriftCase] = {}
        self._delete_after: dict[str, DriftCase] = {}
        self._deleted: set[str] = set()
        self._lost: set[str] = set()

    def know_deal(self, deal_id: str, company_id: str) -> None:
        """Remember a deal's company (the echo names it, as the webhook mapping requires)."""
        with self._lock:
            self._deal_company[deal_id] = company_id
            if deal_id not in self._deleted:  # a redelivered creation does not bring it back
                self._deals.setdefault(deal_id, {"id": deal_id, "company_id": company_id})

    def deals(self, after: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """The deals the CRM holds, by id: those after ``after``, at most ``limit``."""
        with self._lock:
            rows = [dict(self._deals[d]) for d in sorted(self._deals) if after is None or d > after]
        return rows if limit is None else rows[:limit]

    def delete(self, deal_id: str) -> bool:
        """Someone deletes a deal in the CRM (no webhook tells Interlock); False: unknown."""
        with self._lock:
            self._deleted.add(deal_id)
            return self._deals.pop(deal_id, None) is not None

    def plan_drift(self, case: DriftCase) -> None:
        """Drift to come for ``case.deal_id`` (``--drift``): its INVOICED write-backs are
        answered 200 and not applied (``crm_writeback_lost``), or a person deletes the deal
        once it shows INVOICED, with no webhook (``crm_deal_deleted``)."""
        if case.deal_id is None:
            raise ValueError(f"{case.case_id}: {case.kind} needs a deal")
        with self._lock:
            if case.kind == "crm_writeback_lost":
                self._lose[case.deal_id] = case
            elif case.kind == "crm_deal_deleted":
                self._delete_after[case.deal_id] = case
            else:
                raise ValueError(f"{case.case_id}: {case.kind} is not CRM drift")

    def _injected(self, case: DriftCase, **details: Any) -> None:
        subject = str(case.deal_id)
        self.recorded.add(
            "drift_injected",
            DriftInjected(case.case_id, case.kind, subject, round(self._wall(), 3), details),
        )

    def patch(
        self, object_type: str, object_id: str, body: dict[str, Any], key: str | None
    ) -> dict[str, Any]:
        """Apply a write-back; the first call per Idempotency-Key triggers one echo webhook."""
        with self._lock:
            first = key is None or key not in self._keys
            if key is not None:
                self._keys.add(key)
            company = self._deal_company.get(object_id)
            n = next(self._ids)
            invoiced = object_type == "deals" and body.get("status") == "INVOICED"
            lost = self._lose.get(object_id) if invoiced else None
            if lost is not None:  # answered, never applied, nobody told (drift)
                if lost.case_id not in self._lost:
                    self._lost.add(lost.case_id)
                    self._injected(lost, status="INVOICED", idempotency_key=key)
            elif object_type == "deals" and object_id in self._deals:
                self._deals[object_id].update(body)
                deleting = self._delete_after.pop(object_id, None) if invoiced else None
                if deleting is not None:  # a person deletes the deal it shows INVOICED
                    self._deleted.add(object_id)
                    del self._deals[object_id]
                    self._injected(deleting, shown=dict(body))
        self.recorded.add("crm_calls", CrmCall("PATCH", object_type, object_id, body, key))
        if first and object_type == "deals" and lost is None:
            action = echo_action(f"echo-{n}", 10**9 + n, object_id, company, body, self.app_id)
            if action.events:
                self.recorded.bump("echoes_sent")
                self._echo(action)
        return {"id": object_id, "updated": sorted(body)}


def _patch_answer(desk: CrmDesk, params: Mapping[str, str], raw: bytes, key: str | None) -> Answer:
    """The answer to ``PATCH /{object_type}/{object_id}``: 400 unless a JSON object."""
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        return 400, {"error": "body is not JSON"}
    if not isinstance(body, dict):
        return 400, {"error": "body is not a JSON object"}
    return 200, desk.patch(params["object_type"], params["object_id"], body, key)


def create_crm_app(desk: CrmDesk) -> HotRoutes:
    """The CRM API over ``desk``: ``PATCH /deals/{id}`` (and any ``/{type}/{id}``), recorded;
    ``GET /deals`` (paged: ``?after=<deal id>&limit=N``) and ``DELETE /deals/{id}``.

    The write-backs, the sinks' most frequent call, are served by :class:`HotRoutes` before
    Starlette; Starlette lists the route too, and answers what the hot route does not serve.
    """
    write_methods = ("PATCH", "POST", "PUT")
    write_path = "/{object_type}/{object_id}"

    def write(params: Mapping[str, str], raw: bytes, key: str | None) -> Answer:
        return _patch_answer(desk, params, raw, key)

    async def patch(request: Request) -> Response:
        status, doc = write(
            request.path_params, await request.body(), request.headers.get("idempotency-key")
        )
        return JSONResponse(doc, status_code=status)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def deals(request: Request) -> Response:
        after = request.query_params.get("after")
        try:
            limit = int(request.query_params["limit"]) if "limit" in request.query_params else None
        except ValueError:
            return JSONResponse({"error": "limit is not a number"}, status_code=400)
        return JSONResponse(desk.deals(after, limit))

    async def delete(request: Request) -> Response:
        if desk.delete(request.path_params["deal_id"]):
            return Response(status_code=204)
        return JSONResponse({"error": "no such deal"}, status_code=404)

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/deals", deals, methods=["GET"]),
            Route("/deals/{deal_id}", delete, methods=["DELETE"]),
            Route(write_path, patch, methods=list(write_methods)),
        ]
    )
    return HotRoutes(app, [HotRoute(write_methods, write_path, write)])
