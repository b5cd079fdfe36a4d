"""A tiny webhook receiver on loopback that records every request (test helper)."""

from __future__ import annotations

import threading

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.fakes.server import ServerThread

__all__ = ["TABLES", "Receiver"]

TABLES = ("customers", "products", "sales_orders", "shipments", "invoices")


class Receiver:
    """A tiny webhook receiver that records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.arrived = threading.Condition()

        async def hook(request: Request) -> Response:
            body = await request.body()
            with self.arrived:
                self.requests.append((str(request.url), dict(request.headers), body))
                self.arrived.notify_all()
            return JSONResponse({"status": "accepted"})

        self.server = ServerThread(
            Starlette(routes=[Route("/webhooks/hubspot", hook, methods=["POST"])])
        ).start()

    def wait_for(self, n: int, timeout: float = 15.0) -> list[tuple[str, dict[str, str], bytes]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= n, timeout)
            return list(self.requests)
