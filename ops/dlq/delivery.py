"""What became of the records a dead-letter command writes (replays, audit records, purge marks)."""

from __future__ import annotations

from typing import Any

__all__ = ["DeliveryErrors"]


class DeliveryErrors:
    """An ``on_delivery`` callback that keeps every failed delivery, then the flush's leftovers."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def __call__(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors.append(f"{msg.topic()}: {err}")

    def flush(self, producer: Any, timeout: float, what: str) -> list[str]:
        """Wait for every delivery; returns the errors (empty: all acknowledged)."""
        left = producer.flush(timeout)
        if left:
            self.errors.append(f"{left} {what} not delivered within {timeout:.0f}s")
        return self.errors
