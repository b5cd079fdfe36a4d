"""The broker fixture and the embedded broker: produce and consume with confluent-kafka."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from interlock import kafka
from interlock.apache_kafka import KafkaBroker, broker_threads, usable_cores
from interlock.broker import BrokerProcess
from interlock.settings import BrokerSettings, Settings
from interlock.tansu import TansuBroker
from tests.conftest import consume_n, end_offsets
from tests.e2e.stack import process_alive

pytestmark = pytest.mark.integration


def test_produce_and_consume_through_the_fixture(
    make_topic: Callable[..., str],
    make_producer: Callable[..., Producer],
    make_consumer: Callable[..., Consumer],
) -> None:
    topic = make_topic(partitions=3)
    producer = make_producer()
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(300)}
    for key, value in sent.items():
        producer.produce(topic, key=key, value=value, headers=[("h", b"1")])
    assert producer.flush(30) == 0
    received = consume_n(make_consumer(topic), len(sent))
    assert {m.key(): m.value() for m in received} == sent  # type: ignore[attr-defined]
    assert all(m.headers() == [("h", b"1")] for m in received)  # type: ignore[attr-defined]


def test_true_end_offsets_count_every_record_of_batched_produces(
    settings: Settings, make_topic: Callable[..., str], make_producer: Callable[..., Producer]
) -> None:
    topic = make_topic(partitions=2)
    producer = make_producer(**{"linger.ms": 100, "batch.num.messages": 10000})
    for i in range(1000):
        producer.produce(topic, key=str(i % 10).encode(), value=b"v")
    producer.flush(30)
    ends = end_offsets(settings.kafka.librdkafka(), [(topic, 0), (topic, 1)])
    assert sum(ends.values()) == 1000


def test_key_partition_is_where_the_producers_put_a_key(
    settings: Settings, make_topic: Callable[..., str]
) -> None:
    """The match index handles a key of the account's own partition at once, trusting
    ``key_partition``: every other producer must put that key there too."""
    topic = make_topic(partitions=6)
    producer = kafka.make_producer(settings)
    keys = [f"{kind}:{n}".encode() for kind in ("tax", "name", "domain") for n in range(100)]
    keys += [f"crm-{n}".encode() for n in range(100)]
    placed: dict[bytes, int] = {}

    def delivered(err: Any, msg: Any) -> None:
        assert err is None
        placed[msg.key()] = msg.partition()

    for key in keys:
        producer.produce(topic, key=key, value=b"v", on_delivery=delivered)
    assert producer.flush(30) == 0
    assert placed == {key: kafka.key_partition(key, 6) for key in keys}
    assert len(set(placed.values())) == 6  # the keys spread over every partition


@pytest.mark.parametrize(
    ("module", "cls"), [("apache_kafka", "KafkaBroker"), ("tansu", "TansuBroker")]
)
def test_embedded_broker_stops_with_its_parent(module: str, cls: str) -> None:
    """A broker started by a process that is SIGKILLed does not outlive it."""
    code = (
        "import sys, time\n"
        f"from interlock.{module} import {cls}\n"
        f"b = {cls}().start()\n"
        "print(b.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    broker_pid = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process_alive(broker_pid):
        time.sleep(0.1)
    assert not process_alive(broker_pid)


@pytest.mark.parametrize("make", [KafkaBroker, TansuBroker], ids=["kafka", "tansu"])
def test_standalone_broker_answers_metadata_and_stops(make: Callable[[], BrokerProcess]) -> None:
    with make() as broker:
        metadata = AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(
            timeout=10
        )
        assert metadata.brokers
        pid = broker.pid
    assert pid is not None
    assert not process_alive(pid)


@pytest.mark.parametrize(("jit", "c1_only"), [("quick", True), ("full", False)])
def test_the_kafka_broker_jvm_compiles_as_its_jit_setting_says(jit: str, c1_only: bool) -> None:
    """``quick`` (the default) runs the broker on C1 alone, ``full`` with C2 as well."""
    settings = BrokerSettings.model_validate({"jit": jit})
    with KafkaBroker(settings) as broker:
        AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(timeout=10)
        assert broker.pid is not None
        argv = Path(f"/proc/{broker.pid}/cmdline").read_bytes().split(b"\0")
    assert (b"-XX:TieredStopAtLevel=1" in argv) is c1_only
    assert BrokerSettings().jit == "quick"


@pytest.mark.parametrize(
    ("cpus", "io", "network"), [(1, 2, 1), (2, 2, 1), (3, 3, 1), (4, 4, 2), (64, 4, 2)]
)
def test_the_broker_runs_fewer_threads_on_a_small_machine(cpus: int, io: int, network: int) -> None:
    assert broker_threads(cpus) == {"num.io.threads": str(io), "num.network.threads": str(network)}


@pytest.mark.parametrize(
    ("cpu_max", "quota_cores"),
    [("max 100000\n", None), ("150000 100000\n", 2), ("50000 100000\n", 1), ("100000 0\n", None)],
)
def test_usable_cores_are_the_affinity_s_fewer_under_a_cgroup_quota(
    tmp_path: Path, cpu_max: str, quota_cores: int | None
) -> None:
    """A container given two cores of a 64-core host runs the threads of two."""
    own = next(
        (line[3:] for line in Path("/proc/self/cgroup").read_text().splitlines()
         if line.startswith("0::")),
        None,
    )  # fmt: skip
    if own is None:
        pytest.skip("no cgroup v2 line for this process")
    affinity = len(os.sched_getaffinity(0))
    assert usable_cores(tmp_path) == affinity  # no cpu.max: the affinity alone
    (tmp_path / own.lstrip("/")).mkdir(parents=True, exist_ok=True)
    (tmp_path / own.lstrip("/") / "cpu.max").write_text(cpu_max)
    expected = affinity if quota_cores is None else min(affinity, quota_cores)
    assert usable_cores(tmp_path) == expected


def test_the_embedded_kafka_broker_runs_the_threads_of_its_machine() -> None:
    with KafkaBroker() as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        (node,) = admin.list_topics(timeout=10).brokers
        (future,) = admin.describe_configs([ConfigResource("broker", str(node))]).values()
        configs = future.result(timeout=10)
    wanted = broker_threads(usable_cores())
    assert {name: configs[name].value for name in wanted} == wanted


def test_kafka_broker_keeps_topics_and_records_across_a_kill_and_restart(
    tmp_path: Path,
) -> None:
    """The embedded Apache Kafka keeps its log on disk: SIGKILL, start again, nothing lost."""
    with KafkaBroker(data_dir=tmp_path / "kafka") as broker:
        conf = {"bootstrap.servers": broker.bootstrap_servers}
        admin = AdminClient(conf)  # kept alive until the future is done
        admin.create_topics([NewTopic("kept", 2, 1)])["kept"].result(30)
        producer = Producer({**conf, "enable.idempotence": True})
        for i in range(500):
            producer.produce("kept", key=str(i).encode(), value=f"v{i}".encode())
        assert producer.flush(30) == 0
        first_pid = broker.pid
        broker.kill()
        assert first_pid is not None
        assert not process_alive(first_pid)
        broker.start()
        consumer = Consumer({**conf, "group.id": "after-restart", "auto.offset.reset": "earliest"})
        consumer.subscribe(["kept"])
        try:
            received = consume_n(consumer, 500, timeout=60)
        finally:
            consumer.close()
    assert sorted(int(m.key()) for m in received) == list(range(500))  # type: ignore[attr-defined]
    assert (tmp_path / "kafka" / "logs" / "kept-0").is_dir()


def test_broker_choice_follows_the_setting_and_java() -> None:
    from interlock.broker import choose_embedded

    assert choose_embedded(Settings(_env_file=None, embedded_broker="tansu")).kind == "tansu"
    auto = choose_embedded(Settings(_env_file=None))
    assert auto.kind == "kafka"  # this machine kind has Java 17 and Maven
    assert "Java" in auto.reason
