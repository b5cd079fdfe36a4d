"""The live monitor scrapes real /metrics endpoints and sums the services into one view."""

from __future__ import annotations

import threading

import httpx
import pytest
from rich.console import Console

from interlock.instruments import Instruments
from interlock.metrics import new_registry, serve_metrics
from ops.simulator.live import LiveMonitor

pytestmark = pytest.mark.integration


def test_monitor_sums_two_services_and_summarises() -> None:
    endpoints, instruments = [], []
    for service in ("webhooks", "processors"):
        registry = new_registry(process=False)
        instruments.append(Instruments(registry, service))
        endpoints.append(serve_metrics(registry, "127.0.0.1", 0))
    try:
        now = [0.0]
        console = Console(record=True, width=120)
        urls = [e.url for e in endpoints] + ["http://127.0.0.1:9/metrics"]  # one is down
        monitor = LiveMonitor(urls, console, clock=lambda: now[0])
        with httpx.Client() as client:
            monitor.sample(client)
            for inst in instruments:
                inst.events_consumed.labels(inst.service, "t", "ok").inc(30)
                inst.dead_letters.labels(inst.service, "dlq.t", "DECODE_FAILED").inc(2)
            now[0] = 3.0
            view = monitor.sample(client)
        assert view.events_in_per_s == pytest.approx(20.0)
        assert view.dead_letters == {"DECODE_FAILED": 4}
        stop = threading.Event()
        stop.set()
        summary = monitor.run(stop)
        assert summary.consumed == 60
        assert "Run summary" in console.export_text()
    finally:
        for endpoint in endpoints:
            endpoint.stop()
