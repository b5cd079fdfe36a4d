"""The embedded broker: Apache Kafka where Java can run it, else Tansu; started by this process.

Used when no bootstrap servers are configured: by ``interlock up``, ``interlock broker`` and the
test suite. :func:`choose_embedded` says which broker and why; :func:`embedded_broker` makes it.
Either runs as a child process tied to its parent with ``PR_SET_PDEATHSIG``: if the parent
dies, the broker dies too.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from interlock.brokerprocess import (
    BrokerKind,
    BrokerProcess,
    BrokerStartError,
    die_with_parent,
    free_port,
    stop_child,
)
from interlock.resources import Usage, cpu_share, grown_cpu
from interlock.settings import Settings

__all__ = [
    "BrokerChoice",
    "BrokerKind",
    "BrokerProcess",
    "BrokerStartError",
    "broker_banner",
    "broker_growth_line",
    "choose_embedded",
    "die_with_parent",
    "embedded_broker",
    "embedded_run_settings",
    "free_port",
    "stop_child",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerChoice:
    """Which embedded broker runs, and why (the banner shows both)."""

    kind: BrokerKind
    reason: str


def _java_major(java: str) -> int | None:
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=20, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    for token in out.replace('"', " ").split():
        head = token.split(".")[0].split("-")[0].split("+")[0]
        if head.isdigit() and token[0].isdigit():
            major = int(head)
            return int(token.split(".")[1]) if major == 1 else major
    return None


def choose_embedded(settings: Settings) -> BrokerChoice:
    """Apache Kafka where Java >= 17 and Maven (or the cached jars) are present, else Tansu."""
    if settings.embedded_broker == "tansu":
        return BrokerChoice("tansu", "INTERLOCK_EMBEDDED_BROKER=tansu")
    from interlock.apache_kafka import cached_classpath, java_binary

    java = java_binary(settings.broker)
    major = _java_major(java) if java else None
    forced = settings.embedded_broker == "kafka"
    if major is None or major < 17:
        why = "no Java found" if major is None else f"Java {major} is older than 17"
        if forced:
            raise BrokerStartError(f"INTERLOCK_EMBEDDED_BROKER=kafka, but {why}")
        return BrokerChoice("tansu", f"{why}: Apache Kafka needs Java 17 or newer")
    if cached_classpath(settings.broker) is None and shutil.which("mvn") is None:
        why = "neither Maven nor cached Kafka jars found"
        if forced:
            raise BrokerStartError(f"INTERLOCK_EMBEDDED_BROKER=kafka, but {why}")
        return BrokerChoice("tansu", why)
    if forced:
        return BrokerChoice("kafka", "INTERLOCK_EMBEDDED_BROKER=kafka")
    return BrokerChoice("kafka", f"Java {major} found")


def embedded_broker(
    settings: Settings,
    kind: BrokerKind | None = None,
    port: int | None = None,
    data_dir: Path | None = None,
) -> BrokerProcess:
    """The embedded broker of ``kind`` (default: :func:`choose_embedded`), not started yet."""
    kind = kind or choose_embedded(settings).kind
    if kind == "tansu":
        from interlock.tansu import TansuBroker

        return TansuBroker(port=port)
    from interlock.apache_kafka import KafkaBroker

    return KafkaBroker(settings.broker, port=port, data_dir=data_dir)


def embedded_run_settings(
    settings: Settings, broker: BrokerProcess | str, workers: int
) -> Settings:
    """Settings of a run on a just-started embedded broker.

    One partition per worker unless partitions were configured
    (:meth:`Settings.with_embedded_topics`): on Apache Kafka too, fewer partitions cost the
    one machine less (``--simulate 500``: broker 47% / 23% of a core with 1 partition against
    76% / 38% with 3, 366 against 340 actions/s through). The workers' local tables go in a fresh
    ``<data_dir>/embedded``: the broker starts empty, so no local state may outlive it.
    """
    bootstrap = broker if isinstance(broker, str) else broker.bootstrap_servers
    run = settings.with_bootstrap(bootstrap).with_embedded_topics(workers)
    if not isinstance(broker, str) and broker.kind == "tansu":
        kafka = run.kafka.model_copy(update={"broker_kind": "tansu"})
        run = run.model_copy(update={"kafka": kafka})
    run = run.with_embedded_state()
    with contextlib.suppress(OSError):
        shutil.rmtree(run.processors.data_dir)
    return run


def broker_banner(broker: BrokerProcess, choice: BrokerChoice) -> str:
    if broker.kind == "kafka":
        where = f"data in {getattr(broker, 'data_dir', '?')}"
        name = f"Apache Kafka {broker.version} (KRaft)"
    else:
        where = "in memory: a restart loses every record"
        name = f"Tansu {broker.version}"
    return f"{name}, pid {broker.pid}, {where}; {choice.reason}"


def broker_growth_line(
    broker_kind: str | None,
    start: dict[str, Usage],
    early: dict[str, Usage],
    load_end: dict[str, Usage],
) -> str | None:
    """Why the embedded broker's CPU share climbed at the same offered load, when it did."""
    if broker_kind != "tansu" or not all("broker" in s for s in (start, early, load_end)):
        return None
    before = cpu_share(start["broker"], early["broker"])
    after = cpu_share(early["broker"], load_end["broker"])
    if not grown_cpu(before, after):
        return None
    return (
        f"[yellow]the embedded broker's CPU went from {before:.0%} to {after:.0%} of a core at the "
        "same offered load: on every fetch that returns records it lists every batch stored in "
        "the partition, and it keeps everything, so its cost grows with the run (README, "
        '"The embedded broker"). Long or heavy runs belong on Apache Kafka '
        "(KAFKA_BOOTSTRAP_SERVERS).[/]"
    )
