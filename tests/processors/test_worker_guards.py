"""The worker refuses uneven partitioning, dead-letters undecodable records while going on,
stops on SIGTERM even when its broker is gone, and exits when it no longer reads a partition."""

from __future__ import annotations

import signal
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from contracts import OrderEvent, encode
from interlock.settings import Settings
from processors.app import STOP_GAVE_UP
from processors.stall import STALLED
from processors.topic_names import ProcessorTopics
from tests.conftest import frozen, private_broker
from tests.processors.conftest import PARTITIONS, ProcessorsEnv, all_topics, create_topics
from tests.processors.events import account_event, quote_event

pytestmark = pytest.mark.integration


def test_worker_refuses_to_start_when_a_canonical_topic_is_not_copartitioned(
    proc_env: ProcessorsEnv, admin: AdminClient
) -> None:
    from processors.topic_names import ProcessorTopics

    topics = ProcessorTopics(proc_env.topics.prefix + "uneven.")
    names = all_topics(topics)
    create_topics(admin, [n for n in names if n != topics.order])
    create_topics(admin, [topics.order], partitions=5)
    worker = proc_env.start_worker(INTERLOCK_PROCESSORS__TOPIC_PREFIX=topics.prefix)
    code = worker.process.wait(60)
    assert code != 0
    assert f"topic {topics.order} has 5 partitions" in worker.output()


def test_undecodable_record_is_dead_lettered_with_its_bytes_and_the_stream_goes_on(
    proc_env: ProcessorsEnv,
) -> None:
    t = proc_env.topics
    proc_env.send(t.account, account_event("acc-p"))
    poison = b"\xc3\x01not-an-event"
    proc_env.send_raw(t.quote, b"acc-p", poison)
    proc_env.send(t.quote, quote_event("q-p", "acc-p"))
    worker = proc_env.start_worker()
    commands = proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 1)
    assert [c.payload.quote_id for c in commands if isinstance(c, OrderEvent)] == ["q-p"]
    dead = proc_env.wait_for_raw(f"dlq.{t.quote}", lambda recs: len(recs) >= 1)
    assert [(r.key, r.value) for r in dead] == [(b"acc-p", poison)], worker.output()
    assert dict(dead[0].headers)["interlock.dlq.reason"] in (b"DECODE_FAILED", b"SCHEMA_UNKNOWN")


def test_a_worker_killed_before_its_commit_leaves_the_dead_lettered_record_to_the_next(
    proc_env: ProcessorsEnv,
) -> None:
    """Dead letters are not flushed one by one; the flush before each commit makes them
    durable. A worker killed after writing one but before committing its record's offset
    leaves the record to the next worker, which dead-letters it again: at least once, never
    lost, and the valid quote beside it still gets one order (one distinct event id)."""
    t = proc_env.topics
    proc_env.send(t.account, account_event("acc-k"))
    poison = b"\xc3\x01poison-before-the-commit"
    proc_env.send_raw(t.quote, b"acc-k", poison)
    proc_env.send(t.quote, quote_event("q-k", "acc-k"))
    first = proc_env.start_worker(INTERLOCK_PROCESSORS__COMMIT_INTERVAL_S="3600")  # none
    dead = proc_env.wait_for_raw(f"dlq.{t.quote}", lambda recs: len(recs) >= 1)
    assert [(r.key, r.value) for r in dead] == [(b"acc-k", poison)], first.output()
    assert proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 1), first.output()
    first.stop(signal.SIGKILL)
    consumer = Consumer({**proc_env.settings.kafka.librdkafka(), "group.id": proc_env.app_id})
    try:
        committed = consumer.committed(
            [TopicPartition(t.quote, p) for p in range(PARTITIONS)], timeout=30
        )
    finally:
        consumer.close()
    assert all(tp.offset < 0 for tp in committed), committed  # the kill came before any commit

    second = proc_env.start_worker()
    dead = proc_env.wait_for_raw(f"dlq.{t.quote}", lambda recs: len(recs) >= 2)
    assert [(r.key, r.value) for r in dead] == [(b"acc-k", poison)] * 2, second.output()
    first_copy, second_copy = (dict(r.headers) for r in dead)
    origin = ("interlock.dlq.original.partition", "interlock.dlq.original.offset")
    assert [second_copy[h] for h in origin] == [first_copy[h] for h in origin]  # the same record
    commands = proc_env.events(t.create_order)
    assert {c.event_id for c in commands} == {commands[0].event_id}, second.output()
    assert {c.payload.quote_id for c in commands if isinstance(c, OrderEvent)} == {"q-k"}


@pytest.mark.parametrize("gone", ["killed", "frozen"])
def test_a_worker_whose_broker_is_gone_still_stops_on_sigterm(
    gone: str, settings: Settings, tmp_path: Path
) -> None:
    """Faust's stop can wait for a dead broker forever; the worker gives up after its timeout.

    A killed broker refuses connections, and Faust's stop may finish (exit 0) or wait. A frozen
    one (SIGSTOP) answers nothing, so the stop waits for sure: the worker gives up and says
    where its stop waited."""
    with ExitStack() as stack:
        broker = stack.enter_context(private_broker())  # its own: this test stops it
        private = settings.with_bootstrap(broker.bootstrap_servers)
        topics = ProcessorTopics(f"gone{uuid.uuid4().hex[:8]}.")
        create_topics(AdminClient(private.kafka.librdkafka()), all_topics(topics))
        producer = Producer(private.kafka.librdkafka())
        env = ProcessorsEnv(private, topics, f"app-{topics.prefix}", tmp_path, producer)
        worker = env.start_worker(INTERLOCK_PROCESSORS__SHUTDOWN_TIMEOUT_S="4")
        stack.callback(worker.stop, signal.SIGKILL, 5)
        assert worker.wait_metric("interlock_assigned_partitions", 1, 90) >= 1, worker.output()
        if gone == "killed":
            broker.kill()  # gone at once: no controlled shutdown that tells the clients
        else:
            stack.enter_context(frozen(broker.pid))  # thawed before the broker's own stop
        started = time.monotonic()
        worker.process.send_signal(signal.SIGTERM)
        code = worker.process.wait(60)
        waited = time.monotonic() - started
    # The worker is gone within its timeout and a little more, and says so when it gave up.
    assert code in ((0, STOP_GAVE_UP) if gone == "killed" else (STOP_GAVE_UP,)), worker.output()
    assert waited < 30
    if code == STOP_GAVE_UP:
        assert waited >= 4
        assert "did not stop within 4 s (is the broker reachable?)" in worker.output()
        assert "where its stop waited:\n  worker loop, " in worker.output()  # a task and its frames


def test_a_worker_that_no_longer_reads_a_partition_with_records_waiting_exits_stalled(
    settings: Settings, tmp_path: Path
) -> None:
    """Its broker frozen (SIGSTOP) with quotes waiting: no position moves, so after
    ``stall_timeout_s`` the worker says which partitions it held and exits ``STALLED``."""
    with ExitStack() as stack:
        broker = stack.enter_context(private_broker())
        private = settings.with_bootstrap(broker.bootstrap_servers)
        topics = ProcessorTopics(f"stall{uuid.uuid4().hex[:8]}.")
        create_topics(AdminClient(private.kafka.librdkafka()), all_topics(topics))
        producer = Producer({**private.kafka.librdkafka(), "linger.ms": 5})
        env = ProcessorsEnv(private, topics, f"app-{topics.prefix}", tmp_path, producer)
        env.send(topics.account, *(account_event(f"acc-{a}") for a in range(30)))
        for q in range(30_000):  # far more than a worker reads in the seconds below
            account = f"acc-{q % 30}"
            producer.produce(topics.quote, encode(quote_event(f"q-{q}", account)), account)
            if q % 1000 == 999:
                producer.poll(0)
        assert producer.flush(60) == 0
        worker = env.start_worker(INTERLOCK_PROCESSORS__STALL_TIMEOUT_S="5")
        stack.callback(worker.stop, signal.SIGKILL, 5)
        consumed = worker.wait_metric("interlock_events_consumed_total", 1, 90, topic=topics.quote)
        assert consumed >= 1, worker.output()
        stack.enter_context(frozen(broker.pid))  # thawed before the broker's own stop
        froze = time.monotonic()
        code = worker.process.wait(60)
        waited = time.monotonic() - froze
    assert code == STALLED, worker.output()
    assert waited >= 5
    assert "the worker holds partitions it no longer reads" in worker.output()
    assert f"{topics.quote}[" in worker.output()
