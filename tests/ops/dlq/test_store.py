"""read_topic reads to the true end, also when the broker's first answer is short."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from contracts.errors import Reason
from interlock.settings import Settings
from ops.dlq import store
from tests.ops.dlq.conftest import write_dead_letters

pytestmark = pytest.mark.integration


def _letters(n: int) -> list[tuple[bytes | None, bytes | None, Reason]]:
    return [(f"k-{i}".encode(), f"v-{i}".encode(), Reason.JOIN_TIMEOUT) for i in range(n)]


def test_a_whole_topic_answered_as_empty_is_read_on_and_the_warning_says_so(
    settings: Settings,
    make_topic: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = make_topic(3, prefix="canonical.readtest")
    dlq = make_topic(3, name=f"dlq.{topic}")
    write_dead_letters(settings, topic, _letters(90), partitions=3)
    answers: list[tuple[int, tuple[int, int]]] = []
    real = store._watermarks

    def first_answer_empty(consumer: Any, name: str, partition: int, timeout: float) -> Any:
        marks = real(consumer, name, partition, timeout)
        answer = (0, 0) if len(answers) < 3 else marks  # a short first answer
        answers.append((partition, answer))
        return answer

    monkeypatch.setattr(store, "_watermarks", first_answer_empty)
    with caplog.at_level(logging.WARNING, logger="ops.dlq.store"):
        records = store.read_topic(settings.kafka.librdkafka(), dlq)

    assert sorted(r.key or b"" for r in records) == sorted(f"k-{i}".encode() for i in range(90))
    for partition in range(3):  # each partition whole and in order
        offsets = [r.offset for r in records if r.partition == partition]
        assert offsets == list(range(len(offsets))), partition
    assert len(answers) == 9  # the first answer, the check that found more, the check that agreed
    assert "read as empty" in caplog.text
    assert dlq in caplog.text


def test_a_read_that_agrees_with_the_broker_asks_once_more_and_reads_on_from_nothing(
    settings: Settings,
    make_topic: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = make_topic(2, prefix="canonical.readtest")
    dlq = make_topic(2, name=f"dlq.{topic}")
    empty = make_topic(2, name=f"dlq.{make_topic(2, prefix='canonical.readtest')}")
    write_dead_letters(settings, topic, _letters(10), partitions=2)
    calls: list[str] = []
    real = store._watermarks

    def counted(consumer: Any, name: str, partition: int, timeout: float) -> Any:
        calls.append(name)
        return real(consumer, name, partition, timeout)

    monkeypatch.setattr(store, "_watermarks", counted)
    conf = settings.kafka.librdkafka()
    with caplog.at_level(logging.INFO, logger="ops.dlq.store"):
        assert len(store.read_topic(conf, dlq)) == 10
        assert store.read_topic(conf, empty) == []
    assert calls.count(dlq) == 4  # two partitions, asked before and after the read
    assert calls.count(empty) == 4  # nothing to read, and the broker agrees when asked again
    assert "reading on" not in caplog.text
