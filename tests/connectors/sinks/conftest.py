"""A sink loop on unique command topics against the fake ERP/CRM on loopback."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.fakes import FakeApis, ServerThread, create_fake_app
from connectors.sinks.contract import CommandKind
from connectors.sinks.loop import BatchStageLoop
from connectors.sinks.service import build_sink_loop
from contracts import Order, OrderEvent, Source, encode
from interlock.instruments import Instruments
from interlock.metrics import new_registry
from interlock.settings import Settings, SinkSettings, SinkTargetSettings


def order_command(
    order_id: str,
    *,
    event_type: str = "CreateOrder",
    age_s: float = 0.0,
    deal: str | None = None,
    status: str | None = None,
    event_id: str | None = None,
) -> OrderEvent:
    """A command as the processors emit it (``occurred_at`` = the business event time)."""
    now = datetime.now(UTC)
    extra: dict[str, Any] = {"crm_record_id": deal} if deal else {}
    if status:
        extra["status"] = status
    return OrderEvent(
        event_id=event_id or f"cmd-{order_id}-{uuid.uuid4().hex[:6]}",
        event_type=event_type,
        source=Source(system="crm", vendor="hubspot", record_id=order_id),
        correlation_id=f"flow-{order_id}",
        occurred_at=now - timedelta(seconds=age_s),
        payload=Order(
            order_id=order_id, account_id="acct-1", quote_id="q-1", quote_revision=1, **extra
        ),
    )


@dataclass
class SinkRig:
    fake: FakeApis
    loop: BatchStageLoop
    instruments: Instruments
    topics: dict[CommandKind, str]
    outcomes: str
    produce: Callable[[str, bytes, OrderEvent], None]
    crm_server: ServerThread
    """The fake CRM's own server, on the same fake (a test may stop it: the CRM is then down,
    connections refused, while the ERP answers)."""

    def run_until(self, done: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "condition not reached in time"
            self.loop.run_once()

    def sample(self, name: str, labels: dict[str, str]) -> float:
        return self.instruments.registry.get_sample_value(name, labels) or 0.0

    def total(self, name: str) -> float:
        """The sum of every sample of ``name``, whatever its labels."""
        return sum(
            s.value
            for family in self.instruments.registry.collect()
            for s in family.samples
            if s.name == name
        )


@pytest.fixture
def sink_rig(
    settings: Settings,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Any],
) -> Callable[..., Iterator[SinkRig]]:
    """Factory: ``with contextlib.contextmanager(sink_rig)(delays, **sink options) as rig``."""

    def start(
        delays: list[float], kinds: tuple[CommandKind, ...] = ("create-order",), **sink: Any
    ) -> Iterator[SinkRig]:
        tag = uuid.uuid4().hex[:8]
        topics: dict[CommandKind, str] = {}
        for kind in kinds:
            target = "crm" if kind == "update-deal" else "erp"
            topic = make_topic(1, name=f"commands.{target}.{kind}.{tag}")
            for n in range(1, len(delays) + 1):
                make_topic(1, name=f"retry.{topic}.{n}")
            make_topic(1, name=f"dlq.{topic}")
            topics[kind] = topic
        outcomes = make_topic(1, name=f"canonical.order.v1.{tag}")
        fake = FakeApis()
        producer = make_producer()

        def produce(topic: str, key: bytes, command: OrderEvent) -> None:
            producer.produce(topic, key=key, value=encode(command))
            producer.flush(10)

        with (
            ServerThread(create_fake_app(fake)) as server,
            ServerThread(create_fake_app(fake)) as crm_server,
        ):
            options: dict[str, Any] = {
                "retry_jitter_s": 0.0, "breaker_failures": 5, "inline_retries": 0, **sink
            }  # fmt: skip
            configured = settings.model_copy(
                update={
                    "sinks": SinkSettings(
                        erp=SinkTargetSettings(base_url=server.url, timeout_s=3),
                        crm=SinkTargetSettings(base_url=crm_server.url, timeout_s=3),
                        **options,
                    ),
                    "retry": settings.retry.model_copy(update={"delays": delays}),
                }
            )
            instruments = Instruments(new_registry(process=False), f"sinks-{tag}")
            loop, client = build_sink_loop(
                configured,
                instruments,
                routes={t: k for k, t in topics.items()},
                outcome_topic=outcomes,
                group_id=f"sinks-{tag}",
            )
            try:
                yield SinkRig(fake, loop, instruments, topics, outcomes, produce, crm_server)
            finally:
                loop.consumer.close()
                client.close()

    return start
