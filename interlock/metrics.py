"""Serving a Prometheus registry on ``/metrics``; every service gets its registry passed in."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from interlock.collector import frozen_objects

__all__ = ["CollectorSettings", "MetricsEndpoint", "new_registry", "serve_metrics"]


class CollectorSettings(Collector):
    """The garbage collector's thresholds in effect (read at each scrape) and the objects
    :func:`~interlock.collector.tune_collector` froze out of it: whether a service tuned its
    collector shows on its ``/metrics``."""

    def collect(self) -> Iterator[Metric]:
        thresholds = GaugeMetricFamily(
            "interlock_gc_threshold",
            "The garbage collector's threshold of each generation (generation 0: allocations "
            "between young collections)",
            labels=["generation"],
        )
        for generation, threshold in enumerate(gc.get_threshold()):
            thresholds.add_metric([str(generation)], threshold)
        yield thresholds
        yield GaugeMetricFamily(
            "interlock_gc_frozen_objects",
            "Objects frozen out of the garbage collector when it was tuned (the heap built at "
            "start)",
            value=frozen_objects(),
        )


def new_registry(*, process: bool = True) -> CollectorRegistry:
    """A fresh registry with the process, platform and GC collectors (for memory and CPU), and
    the collector's settings (:class:`CollectorSettings`)."""
    registry = CollectorRegistry(auto_describe=True)
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        registry.register(CollectorSettings())
    return registry


@dataclass
class MetricsEndpoint:
    """A running ``/metrics`` HTTP server."""

    host: str
    port: int
    _server: WSGIServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsEndpoint:
    """Serve ``registry`` on ``http://host:port/metrics`` (port 0 picks a free one)."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    actual_port = int(server.server_address[1])
    return MetricsEndpoint(host, actual_port, server, thread)
