"""Cases in their latest state, read from the compacted ``review.cases``; decisions written out.

``review.cases`` holds one record per state change of a case, keyed by case id; the latest
record of a key is the case (a tombstone removes it). :func:`read_cases` reads the topic to its
true end once (the CLI); :class:`CaseStore` keeps reading it in a background thread (the
console) and says when it has caught up with what the topic held when it started.
:class:`DecisionSender` writes decisions with the contract's encoder through an idempotent
producer and waits for the broker's acknowledgement: a decision shown as sent is durable. Its
id is derived from case, action and target, so a repeat is harmless (the worker acts once).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from contracts.errors import DecodeError
from contracts.review import (
    CASES_TOPIC,
    DECISIONS_TOPIC,
    Case,
    Decision,
    decode_case,
    encode_decision,
)
from interlock.kafka import produce
from interlock.settings import Settings
from ops.dlq.store import read_topic, topic_partitions
from processors.topic_names import ProcessorTopics

__all__ = [
    "CaseStore",
    "DecisionNotDeliveredError",
    "DecisionSender",
    "apply_record",
    "read_cases",
    "review_topics",
]

log = logging.getLogger(__name__)


class DecisionNotDeliveredError(Exception):
    """Kafka did not acknowledge a decision in time: it may or may not have been written."""


def review_topics(settings: Settings) -> tuple[str, str]:
    """``(review.cases, review.decisions)`` with the processors' topic prefix, as the worker
    names them."""
    topics = ProcessorTopics.from_settings(settings)
    return topics.name(CASES_TOPIC), topics.name(DECISIONS_TOPIC)


def apply_record(cases: dict[str, Case], key: bytes | None, value: bytes | None) -> bool:
    """Fold one ``review.cases`` record into ``cases``; False when it is not a case (skipped).

    A tombstone removes its case. A record of an older version than the one held is ignored:
    compaction may leave either, and a person must never see a case go back in time.
    """
    if key is None:
        return False
    case_id = key.decode("utf-8", errors="replace")
    if value is None:
        cases.pop(case_id, None)
        return True
    try:
        case = decode_case(value)
    except DecodeError as exc:
        log.warning("review.cases record %s skipped: %s", case_id, exc)
        return False
    held = cases.get(case.case_id)
    if held is None or case.version >= held.version:
        cases[case.case_id] = case
    return True


def read_cases(conf: Mapping[str, Any], topic: str, timeout: float = 60.0) -> dict[str, Case]:
    """Every case of ``topic`` in its latest state, read to the topic's true end."""
    cases: dict[str, Case] = {}
    for record in read_topic(conf, topic, timeout=timeout):
        apply_record(cases, record.key, record.value)
    return cases


class CaseStore:
    """The latest state of every case, kept up to date from ``topic`` by a background thread.

    It assigns itself every partition (no consumer group: each console holds all cases) and
    reads from the beginning. ``caught_up`` turns true once every partition was read up to its
    end as it was when the store started; until then a queue would be incomplete.

    Every open case is held; of the closed ones only the ``closed_kept`` that closed last, so
    a console that runs for months holds what people work on, not the whole history (an older
    closed case is still on the topic for ``interlock review show``, and its decision on
    ``audit.decisions``).
    """

    def __init__(
        self,
        conf: Mapping[str, Any],
        topic: str,
        *,
        poll_s: float = 0.2,
        metadata_retry_s: float = 1.0,
        on_dead: Callable[[], None] | None = None,
        closed_kept: int = 500,
    ) -> None:
        self._conf = dict(conf)
        self._closed_kept = closed_kept
        self._closed: OrderedDict[str, None] = OrderedDict()
        self.closed_forgotten = 0
        self.topic = topic
        self._poll_s = poll_s
        self._metadata_retry_s = metadata_retry_s
        self._on_dead = on_dead
        self._lock = threading.Lock()
        self._cases: dict[str, Case] = {}
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.caught_up = threading.Event()
        self.problem: str | None = f"reading {topic}"
        self.records = 0

    def start(self) -> CaseStore:
        """Start reading in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="case-store", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reading and close the consumer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def running(self) -> bool:
        """True while the reader thread runs (liveness)."""
        return self._thread is not None and self._thread.is_alive()

    def is_caught_up(self) -> bool:
        """True once the topic was read to the end it had at start (readiness)."""
        return self.caught_up.is_set()

    def cases(self) -> dict[str, Case]:
        """A snapshot of every case by id."""
        with self._lock:
            return dict(self._cases)

    def get(self, case_id: str) -> Case | None:
        with self._lock:
            return self._cases.get(case_id)

    def wait_for(self, check: Callable[[dict[str, Case]], bool], timeout: float) -> bool:
        """Wait until ``check(cases)`` holds (e.g. a decision shows as applied) or ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not check(self._cases):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._read()
                    return
                except KafkaException as exc:  # a broken connection: start over, state kept
                    self.problem = f"reading {self.topic} failed: {exc}"
                    log.warning("%s; reading again", self.problem)
                    self._stop.wait(self._metadata_retry_s)
        except Exception as exc:  # a bug or a refused login: the store cannot heal
            self.problem = f"the case store stopped: {exc!r}"
            log.exception("the case store stopped")
            if self._on_dead is not None:
                self._on_dead()

    def _read(self) -> None:
        partitions = topic_partitions(self._conf, self.topic)
        while not partitions:
            self.problem = f"topic {self.topic} does not exist yet"
            if self._stop.wait(self._metadata_retry_s):
                return
            partitions = topic_partitions(self._conf, self.topic)
        consumer = Consumer(
            {
                **self._conf,
                "group.id": f"interlock-case-store-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": int(self._poll_s * 1000),
            }
        )
        try:
            highs = {
                p: int(consumer.get_watermark_offsets(TopicPartition(self.topic, p), 10)[1])
                for p in partitions
            }
            pending = {p for p, high in highs.items() if high > 0}
            consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
            self.problem = None
            if not pending:
                self.caught_up.set()
            while not self._stop.is_set():
                messages = consumer.consume(500, self._poll_s)
                if messages:
                    self._fold(messages, highs, pending)
        finally:
            consumer.close()

    def _bound(self, key: bytes | None) -> None:
        """Track the case ``key`` just changed; forget the closed cases past ``closed_kept``."""
        if key is None:
            return
        case_id = key.decode("utf-8", errors="replace")
        case = self._cases.get(case_id)
        self._closed.pop(case_id, None)
        if case is None or case.is_open:
            return
        self._closed[case_id] = None
        while len(self._closed) > self._closed_kept:
            oldest, _ = self._closed.popitem(last=False)
            self._cases.pop(oldest, None)
            self.closed_forgotten += 1

    def _fold(self, messages: list[Any], highs: Mapping[int, int], pending: set[int]) -> None:
        with self._changed:
            for msg in messages:
                err = msg.error()
                partition = msg.partition() or 0
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        if (msg.offset() or 0) >= highs.get(partition, 0):
                            pending.discard(partition)
                    elif err.fatal():
                        raise KafkaException(err)
                    continue
                self.records += 1
                apply_record(self._cases, msg.key(), msg.value())
                self._bound(msg.key())
                if (msg.offset() or 0) + 1 >= highs.get(partition, 0):
                    pending.discard(partition)
            self._changed.notify_all()
        if not pending and not self.caught_up.is_set():
            self.caught_up.set()
            log.info("case store caught up: %d case(s) from %s", len(self._cases), self.topic)


class DecisionSender:
    """Writes decisions to ``topic`` and waits for each acknowledgement (idempotent producer)."""

    def __init__(self, producer: Any, topic: str, timeout_s: float = 5.0) -> None:
        self._producer = producer
        self.topic = topic
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._probe_at = 0.0
        self._probe: str | None = "not probed yet"

    def send(self, decision: Decision) -> None:
        """Write ``decision`` and wait until Kafka acknowledged it.

        Raises:
            DecisionNotDeliveredError: no acknowledgement within the timeout, or an error.
        """
        key, value = encode_decision(decision)
        outcome: list[KafkaError | None] = []

        def delivered(err: KafkaError | None, _msg: Any) -> None:
            outcome.append(err)

        with self._lock:
            produce(self._producer, self.topic, value, key, on_delivery=delivered)
            self._producer.flush(self._timeout_s)
        if not outcome:
            raise DecisionNotDeliveredError(
                f"Kafka did not acknowledge decision {decision.decision_id} within "
                f"{self._timeout_s:g} s; sending it again is safe (same id)"
            )
        if outcome[0] is not None:
            raise DecisionNotDeliveredError(f"decision {decision.decision_id}: {outcome[0]}")

    def problem(self, every_s: float = 2.0) -> str | None:
        """Why a decision could not be delivered now (None: it can), asked at most every
        ``every_s`` seconds: the topic's metadata from a broker, through the producer itself."""
        now = time.monotonic()
        if now - self._probe_at < every_s:
            return self._probe
        try:
            meta = self._producer.list_topics(self.topic, timeout=1.0).topics.get(self.topic)
            if meta is None or meta.error is not None:
                self._probe = f"topic {self.topic} is not available"
            elif any(p.leader < 0 for p in meta.partitions.values()):
                self._probe = f"a partition of {self.topic} has no leader"
            else:
                self._probe = None
        except KafkaException as exc:
            self._probe = f"no broker answered: {exc}"
        self._probe_at = time.monotonic()
        return self._probe

    def close(self, timeout: float = 5.0) -> None:
        self._producer.flush(timeout)
