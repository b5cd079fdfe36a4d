"""The simulated CRM API: records the write-backs the sinks send, and sends back their echo.

A real CRM notifies its webhook subscribers of every change, including the ones an integration
made through its API, marking them as such (HubSpot: ``changeSource: "INTEGRATION"`` and the
app id as ``sourceId``). The echo is what Interlock must recognise and not propagate again.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ops.simulator.conventions import ECHO_CHANGE_SOURCE
from ops.simulator.scenario import WebhookAction
from ops.simulator.truth import CrmCall, Recorded

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

    def __init__(self, recorded: Recorded, echo: EchoSink, app_id: str) -> None:
        self.recorded = recorded
        self._echo = echo
        self.app_id = app_id
        self._deal_company: dict[str, str] = {}
        self._keys: set[str] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def know_deal(self, deal_id: str, company_id: str) -> None:
        """Remember a deal's company (the echo names it, as the webhook mapping requires)."""
        with self._lock:
            self._deal_company[deal_id] = company_id

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
        self.recorded.add("crm_calls", CrmCall("PATCH", object_type, object_id, body, key))
        if first and object_type == "deals":
            action = echo_action(f"echo-{n}", 10**9 + n, object_id, company, body, self.app_id)
            if action.events:
                self.recorded.bump("echoes_sent")
                self._echo(action)
        return {"id": object_id, "updated": sorted(body)}


def create_crm_app(desk: CrmDesk) -> Starlette:
    """The CRM API over ``desk``: ``PATCH /deals/{id}`` (and any ``/{type}/{id}``), recorded."""

    async def patch(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body is not a JSON object"}, status_code=400)
        result = desk.patch(
            request.path_params["object_type"],
            request.path_params["object_id"],
            body,
            request.headers.get("idempotency-key"),
        )
        return JSONResponse(result)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/{object_type}/{object_id}", patch, methods=["PATCH", "POST", "PUT"]),
        ]
    )
