"""Every target RESULTS.md holds a figure to, in one place (a target is never lowered silently).

Withdrawn by the throughput issue, and so shown without a verdict: 15,000 quotes/s per worker
(replaced by ratios against the plain loop in the same run) and two workers at 1.6x one, which
two cores shared with the broker and the load cannot measure honestly (``SCALING_NOTE``)."""

from __future__ import annotations

from bench.table import Target

__all__ = [
    "CAPACITY_RATIO_TARGET",
    "CAPACITY_TARGET",
    "CDC_TARGET",
    "FAUST_VS_QUIX_TARGET",
    "HANDOFF_TARGET",
    "INGEST_RATIO_TARGET",
    "INGEST_TARGET",
    "INPROCESS_TARGET",
    "SCALING_NOTE",
    "SERDE_TARGET",
    "STORE_TARGET",
    "WORKER_TARGET",
]

SERDE_TARGET = Target("≥ 0.7x raw fastavro", "min", 0.7, on="ratio")
CDC_TARGET = Target("≥ 40,000 events/s", "min", 40_000, unit="events/s")
WORKER_TARGET = Target("≥ 0.8x the plain loop", "min", 0.8, on="ratio")
"""The Faust worker on its default store against the plain loop running the same Pipeline."""
STORE_TARGET = Target("rocksdb:// ≥ 0.85x memory://", "min", 0.85, on="ratio")
HANDOFF_TARGET = Target("p99 < 250 ms at 1,000 events/s", "max", 0.25, unit="s")
INPROCESS_TARGET = Target("≥ 2x the baseline's quotes/s", "min", 2.0, on="ratio")
INGEST_TARGET = Target("≥ 2,000 req/s on one process", "min", 2_000, unit="req/s")
INGEST_RATIO_TARGET = Target("≥ 0.7x the bare endpoint", "min", 0.7, on="ratio")
CAPACITY_TARGET = Target("≥ 1,000 actions/s with handoff p99 < 1 s", "min", 1_000,
                         unit="actions/s")  # fmt: skip
CAPACITY_RATIO_TARGET = Target("Kafka ≥ 1.5x Tansu", "min", 1.5, on="ratio")
SCALING_NOTE = (
    "two workers against one is shown without a target: the throughput issue withdrew "
    "2 workers ≥ 1.6x one, which two cores shared with the broker and the load cannot measure "
    "honestly"
)
"""The note of a section that shows two workers against one."""
FAUST_VS_QUIX_TARGET = Target("Faust worker ≥ 1.0x Quix Streams", "min", 1.0, on="ratio")
