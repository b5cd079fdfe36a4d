"""The sink's batch behaviour: concurrent calls, per-key order, handoff latency, the breaker."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from interlock.metrics import serve_metrics
from tests.connectors.sinks.conftest import SinkRig, order_command

pytestmark = pytest.mark.integration

_HANDOFF = "interlock_handoff_latency_seconds"


def test_calls_run_concurrently_keep_per_key_order_and_observe_handoff_latency(
    sink_rig: Callable[..., Iterator[SinkRig]],
) -> None:
    with contextlib.contextmanager(sink_rig)(
        [0.2], kinds=("create-order", "update-deal"), concurrency=4
    ) as rig:
        rig.fake.delay_s = 0.2  # calls overlap only if the sink sends them concurrently
        create, update = rig.topics["create-order"], rig.topics["update-deal"]
        for n in range(6):
            rig.produce(create, f"acct-{n}".encode(), order_command(f"o-{n}", age_s=2))
        statuses = ["CONFIRMED", "SHIPPED", "INVOICED"]
        deal_ids = []
        for status in statuses:  # one deal, three updates: must arrive in this order
            command = order_command("o-0", event_type="UpdateDeal", deal="d-1", status=status)
            deal_ids.append(command.event_id)
            rig.produce(update, b"deal-d-1", command)
        rig.run_until(lambda: len(rig.fake.orders) == 6 and len(rig.fake.deals) == 1)
        rig.run_until(lambda: len(rig.fake.calls_to("PATCH", "/deals/")) == 3)
        assert rig.loop.stats.ok == 9
        assert rig.loop.stats.retried == rig.loop.stats.dead_lettered == 0

        # concurrent, and bounded: at most 4 ERP calls plus the deal's one sequential chain
        assert 2 <= rig.fake.max_in_flight <= 5
        patches = rig.fake.calls_to("PATCH", "/deals/d-1")
        assert [c.json()["status"] for c in patches] == statuses
        assert [c.idempotency_key for c in patches] == deal_ids
        assert rig.fake.deals["d-1"]["status"] == "INVOICED"

        for flow, count in (("quote_to_order", 6), ("status_to_crm", 3)):
            assert rig.sample(f"{_HANDOFF}_count", {"flow": flow}) == count
        # create-orders happened >= 2 s after their business time, and well under a minute
        mean = rig.sample(f"{_HANDOFF}_sum", {"flow": "quote_to_order"}) / 6
        assert 2.0 <= mean < 60.0
        assert rig.sample(f"{_HANDOFF}_bucket", {"flow": "quote_to_order", "le": "1.0"}) == 0


def _scrape_state(url: str, target: str) -> float | None:
    for line in httpx.get(url).text.splitlines():
        if line.startswith(f'interlock_circuit_breaker_state{{target="{target}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_an_open_breaker_holds_the_targets_commands_in_their_partition_until_it_recovers(
    sink_rig: Callable[..., Iterator[SinkRig]],
) -> None:
    """While the ERP is down its commands wait in their partition: no retry tier, no dead
    letter, only the breaker's probes reach the ERP; all go out once it answers again."""
    delays = [0.3, 0.5, 0.8]
    with contextlib.contextmanager(sink_rig)(
        delays, breaker_failures=2, breaker_reset_s=0.3, concurrency=1
    ) as rig:
        metrics = serve_metrics(rig.instruments.registry, "127.0.0.1", 0)
        try:
            rig.fake.fail_path("/orders", 503)
            topic = rig.topics["create-order"]
            commands: dict[str, Any] = {}
            for n in range(4):
                command = order_command(f"b-{n}")
                commands[f"b-{n}"] = command
                rig.produce(topic, f"acct-{n}".encode(), command)
            rig.run_until(lambda: _scrape_state(metrics.url, "erp") == 2.0)  # open
            # it stays down through several probes (the breaker re-opens each time) ...
            rig.run_until(lambda: len(rig.fake.calls) >= 6, timeout=30)
            unsent = rig.sample(
                "interlock_sink_calls_total", {"target": "erp", "outcome": "unavailable"}
            )
            assert unsent >= 1  # refused by the open breaker, not sent
            assert {c.status for c in rig.fake.calls} == {503}
            # ... and meanwhile not one command went round the retry tiers or was dead-lettered
            assert rig.loop.stats.retried == 0
            assert rig.loop.stats.dead_lettered == 0
            assert rig.loop.stats.held >= 3

            rig.fake.clear_failures()  # the target recovers
            rig.run_until(lambda: len(rig.fake.orders) == 4)
            assert _scrape_state(metrics.url, "erp") == 0.0  # closed by the half-open probe
        finally:
            metrics.stop()
    assert rig.loop.stats.retried == 0
    assert rig.loop.stats.dead_lettered == 0
    ok = [c for c in rig.fake.calls if c.status == 201]
    assert sorted(c.json()["order_id"] for c in ok) == sorted(commands)
    for order_id, command in commands.items():
        keys = {c.idempotency_key for c in rig.fake.calls if c.json()["order_id"] == order_id}
        assert keys == {command.event_id}


def test_a_blip_is_retried_inline_and_a_longer_failure_waits_once_in_the_partition(
    sink_rig: Callable[..., Iterator[SinkRig]],
) -> None:
    with contextlib.contextmanager(sink_rig)(
        [0.3], inline_retries=2, inline_backoff_s=0.02, inline_max_wait_s=0.5, concurrency=1
    ) as rig:
        topic = rig.topics["create-order"]
        blip = order_command("blip")
        rig.fake.fail_next(1, 503)  # no Retry-After: retried inline, no retry topic
        rig.produce(topic, b"acct-1", blip)
        rig.run_until(lambda: len(rig.fake.orders) == 1)
        calls = [c for c in rig.fake.calls if c.json().get("order_id") == "blip"]
        assert [c.status for c in calls] == [503, 201]
        assert {c.idempotency_key for c in calls} == {blip.event_id}
        assert rig.loop.stats.retried == 0
        assert rig.sample("interlock_sink_calls_total", {"target": "erp", "outcome": "retry"}) == 1
        inline = {"target": "erp", "outcome": "inline_retry"}
        assert rig.sample("interlock_sink_calls_total", inline) == 1

        three = order_command("three")  # fails more often than the inline budget: it waits
        rig.fake.fail_next(3, 503)  # in its partition once (first retry delay), then goes
        rig.produce(topic, b"acct-2", three)
        rig.run_until(lambda: len(rig.fake.orders) == 2)
        calls = [c for c in rig.fake.calls if c.json().get("order_id") == "three"]
        assert [c.status for c in calls] == [503, 503, 503, 201]
        assert (rig.loop.stats.held, rig.loop.stats.retried) == (1, 0)

        slow = order_command("slow")  # the API asks for 2 s: not waited inline, but paused
        rig.fake.retry_after = "2"
        rig.fake.fail_next(1, 503)
        rig.produce(topic, b"acct-3", slow)
        rig.run_until(lambda: len(rig.fake.orders) == 3)
        calls = [c for c in rig.fake.calls if c.json().get("order_id") == "slow"]
        assert [c.status for c in calls] == [503, 201]
        assert (rig.loop.stats.held, rig.loop.stats.retried) == (2, 0)
        assert rig.sample("interlock_sink_calls_total", inline) == 3
