"""Reading consumer-group positions from Kafka without ever joining a group.

Committed offsets come from the admin API (ListConsumerGroupOffsets), group membership from
DescribeConsumerGroups, end offsets from ``interlock.kafka.true_end_offsets`` (exact even on
brokers whose ListOffsets is wrong after batched produces), and the timestamp of the first
unconsumed record from a fetch at the committed offset by a consumer that only ``assign``s.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from interlock.kafka import true_end_offsets

__all__ = ["GroupSnapshot", "LagProbe", "PartitionPosition"]

log = logging.getLogger(__name__)

#: Group states in which members are consuming (or about to).
_ACTIVE_STATES = {
    "STABLE",
    "PREPARING_REBALANCE",
    "COMPLETING_REBALANCE",
    "ASSIGNING",
    "RECONCILING",
}


@dataclass(frozen=True)
class PartitionPosition:
    """Where a group is in one partition at one moment."""

    topic: str
    partition: int
    committed: int
    end: int
    first_unconsumed_timestamp: float | None = None

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


@dataclass(frozen=True)
class GroupSnapshot:
    """One consumer group at one moment: membership and positions."""

    group: str
    state: str
    members: int
    positions: list[PartitionPosition] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """True while the group has members (or is rebalancing towards having some)."""
        return self.members > 0 or self.state in _ACTIVE_STATES


UNKNOWN_TOPIC_RETRY_S = 5.0
"""A topic a group committed to but the metadata does not hold is looked up again after this."""


class LagProbe:
    """Takes snapshots of the consumer groups whose id matches a pattern."""

    def __init__(
        self,
        conf: Mapping[str, Any],
        groups: str = ".*",
        timeout: float = 10.0,
        exclude: str = r"^interlock-(end-offsets|lag-probe)-",
        tansu: bool = False,
        metadata_max_age_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conf = dict(conf)
        self._metadata_max_age_s = metadata_max_age_s
        self._clock = clock
        self._partition_ids: dict[str, list[int]] = {}
        self._metadata_at: float | None = None
        self._tansu = tansu
        self._admin = AdminClient(self._conf)
        self._reader: KafkaConsumer | None = None
        self._groups = re.compile(groups)
        self._exclude = re.compile(exclude)
        self._timeout = timeout

    def group_ids(self) -> list[str]:
        listed = self._admin.list_consumer_groups(request_timeout=self._timeout).result()
        if listed.errors:
            # Without the broker's answer, an empty list would read as "no groups, no lag".
            raise RuntimeError(f"listing consumer groups failed: {listed.errors[0]}")
        ids = {g.group_id for g in listed.valid}
        return sorted(g for g in ids if self._groups.fullmatch(g) and not self._exclude.search(g))

    def snapshot(self) -> list[GroupSnapshot]:
        """Membership, committed and end offsets, and first-unconsumed timestamps of each group.

        A failed snapshot replaces the admin client: after a broker restart, librdkafka's admin
        handle was seen to time out on every later group-offsets request (the exporter then
        served the last lag for minutes), while a new client answers at once. The consumer
        that reads watermarks and timestamps is replaced too.
        """
        try:
            return self._snapshot()
        except Exception:
            self._admin = AdminClient(self._conf)
            self._metadata_at = None
            self.close_reader()
            raise

    def close_reader(self) -> None:
        """Close the consumer that reads watermarks and timestamps (made again when needed)."""
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                reader.close()
            except Exception as exc:  # closing a client of a broker that went away
                log.debug("closing the lag probe's consumer failed: %s", exc)

    def _snapshot(self) -> list[GroupSnapshot]:
        group_ids = self.group_ids()
        if not group_ids:
            return []
        committed = self._committed(group_ids)
        described = self._describe(group_ids)
        topics = {topic for offsets in committed.values() for topic, _ in offsets}
        partitions = self._partitions_of(topics)
        ends = true_end_offsets(
            self._conf,
            partitions,
            timeout=self._timeout,
            tansu=self._tansu,
            consumer=None if self._tansu else self._consumer(),
        )
        # A partition of a consumed topic without a commit counts from the log start.
        uncommitted = {
            tp
            for offsets in committed.values()
            for tp in partitions
            if tp[0] in {t for t, _ in offsets} and offsets.get(tp, -1) < 0
        }
        lows = self._low_watermarks(sorted(uncommitted))
        per_group: dict[str, list[tuple[str, int, int, int]]] = {}
        for group in group_ids:
            offsets = committed.get(group, {})
            consumed = {t for t, _ in offsets}
            rows = []
            for topic, partition in partitions:
                if topic not in consumed:
                    continue
                end = ends.get((topic, partition), 0)
                position = offsets.get((topic, partition), -1)
                if position < 0:
                    position = lows.get((topic, partition), 0)
                rows.append((topic, partition, position, end))
            per_group[group] = rows
        # One fetch per distinct (partition, committed offset) that has lag: groups at the same
        # position share it.
        stamps = self._timestamps_at(
            {(t, p, o) for rows in per_group.values() for t, p, o, e in rows if e > o}
        )
        snapshots = []
        for group in group_ids:
            state, members = described.get(group, ("UNKNOWN", 0))
            positions = [
                PartitionPosition(t, p, o, e, stamps.get((t, p, o)))
                for t, p, o, e in per_group[group]
            ]
            snapshots.append(GroupSnapshot(group, state, members, positions))
        return snapshots

    def _committed(self, group_ids: list[str]) -> dict[str, dict[tuple[str, int], int]]:
        out: dict[str, dict[tuple[str, int], int]] = {}
        # One group per request: that is what the admin API accepts.
        futures = {
            g: self._admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(g)], request_timeout=self._timeout
            )[g]
            for g in group_ids
        }
        for group, future in futures.items():
            result = future.result()
            out[group] = {
                (tp.topic, tp.partition): int(tp.offset)
                for tp in result.topic_partitions or []
                if tp.error is None
            }
        return out

    def _describe(self, group_ids: list[str]) -> dict[str, tuple[str, int]]:
        out: dict[str, tuple[str, int]] = {}
        futures = self._admin.describe_consumer_groups(group_ids, request_timeout=self._timeout)
        for group, future in futures.items():
            try:
                description = future.result()
            except Exception as exc:  # a group can vanish between list and describe
                log.debug("describe %s failed: %s", group, exc)
                continue
            out[group] = (description.state.name, len(description.members or []))
        return out

    def _partitions_of(self, topics: set[str]) -> list[tuple[str, int]]:
        """Every partition of ``topics``, from topic metadata kept up to ``metadata_max_age_s``
        (sooner for a topic it does not know): a metadata request per sample grew the process
        by a few KiB each time (librdkafka's admin metadata path), for partitions that rarely
        change."""
        if not topics:
            return []
        now = self._clock()
        age = float("inf") if self._metadata_at is None else now - self._metadata_at
        unknown = not topics <= self._partition_ids.keys()
        if age >= self._metadata_max_age_s or (unknown and age >= UNKNOWN_TOPIC_RETRY_S):
            metadata = self._admin.list_topics(timeout=self._timeout)
            self._partition_ids = {
                name: sorted(meta.partitions)
                for name, meta in metadata.topics.items()
                if meta.error is None
            }
            self._metadata_at = now
        return [(t, p) for t in sorted(topics) for p in self._partition_ids.get(t, [])]

    def _consumer(self) -> KafkaConsumer:
        """The probe's one consumer, kept between samples; it only ``assign``s, never joins a
        group. A new librdkafka client per sample (two or three of them) grew the exporter by
        a few MiB a minute: each brings its threads and their malloc arenas."""
        if self._reader is None:
            self._reader = KafkaConsumer(
                {
                    **self._conf,
                    "group.id": f"interlock-lag-probe-{uuid.uuid4()}",
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "isolation.level": "read_uncommitted",
                    "fetch.wait.max.ms": 10,
                }
            )
        return self._reader

    def _low_watermarks(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        if not partitions:
            return {}
        consumer = self._consumer()
        return {
            (t, p): int(
                consumer.get_watermark_offsets(TopicPartition(t, p), timeout=self._timeout)[0]
            )
            for t, p in partitions
        }

    @staticmethod
    def _done_with(
        consumer: KafkaConsumer, key: tuple[str, int], open_: set[tuple[str, int]]
    ) -> None:
        """A partition's record is read: unassign it. librdkafka fetched up to
        ``max.partition.fetch.bytes`` of its records ahead and drops them with it; left
        assigned, every one of them came through ``poll`` one at a time (and was skipped) before
        the next partition's first record, so a sample cost more the more a group lagged."""
        open_.discard(key)
        consumer.incremental_unassign([TopicPartition(*key)])

    def _timestamps_at(
        self, wanted: set[tuple[str, int, int]]
    ) -> dict[tuple[str, int, int], float]:
        """Timestamp (seconds) of the record at each (topic, partition, offset), by fetching it.

        Only ``assign``: the probe's consumer never joins (or disturbs) a group.
        """
        out: dict[tuple[str, int, int], float] = {}
        pending = sorted(wanted)
        consumer = self._consumer()
        try:
            while pending:
                # One offset per partition per round; further offsets in the next round.
                batch: dict[tuple[str, int], int] = {}
                rest = []
                for topic, partition, offset in pending:
                    if (topic, partition) in batch:
                        rest.append((topic, partition, offset))
                    else:
                        batch[(topic, partition)] = offset
                consumer.assign([TopicPartition(t, p, o) for (t, p), o in batch.items()])
                open_ = set(batch)
                deadline = time.monotonic() + self._timeout
                while open_ and time.monotonic() < deadline:
                    msg = consumer.poll(0.2)
                    if msg is None:
                        continue
                    key = (msg.topic() or "", msg.partition() or 0)
                    if key not in open_:
                        continue
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            self._done_with(consumer, key, open_)
                        continue
                    _kind, stamp = msg.timestamp()
                    if stamp > 0:
                        # A record past a gap (compaction, deleted) is the first unconsumed one.
                        out[(key[0], key[1], batch[key])] = stamp / 1000.0
                    self._done_with(consumer, key, open_)
                pending = rest
            return out
        finally:
            consumer.unassign()
