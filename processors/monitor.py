"""Faust's monitor, kept to what the worker's consumer reads from it.

Faust's default sensor (:class:`faust.sensors.Monitor`) keeps statistics for Faust's web views:
counters per topic and stream, a stringified stream per event, a timestamp on every message,
and a counter per table read and write. The worker runs with those views off and reports its own
metrics (``interlock.instruments``), yet every message, every stream event and every table read
and write paid for them. Faust's consumer itself reads one thing: when each partition's stream
last took an event (``stream_inbound_time``), to warn about a stream that stopped processing.
:class:`LeanMonitor` keeps that, the offsets Faust's consumer reports to it directly, and the
rebalance and commit timings (per rebalance or commit, not per record).
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from faust.sensors import Monitor

__all__ = ["LeanMonitor"]


class LeanMonitor(Monitor):
    """:class:`faust.sensors.Monitor` without the per-record statistics nobody reads."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        """Nothing per message."""

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        """Only when the partition's stream last took an event (Faust's stall warning)."""
        self.stream_inbound_time[tp] = monotonic()

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        """Nothing per event."""

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        """Nothing per message."""

    def on_table_get(self, table: Any, key: Any) -> None:
        """Nothing per table read."""

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        """Nothing per table write."""

    def on_table_del(self, table: Any, key: Any) -> None:
        """Nothing per table delete."""

    def on_send_initiated(
        self, producer: Any, topic: str, message: Any, keysize: int, valsize: int
    ) -> None:
        """Nothing per record sent through Faust's producer."""

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        """Nothing per record sent through Faust's producer."""
