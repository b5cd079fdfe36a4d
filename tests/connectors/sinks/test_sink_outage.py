"""A CRM outage during a run of the sinks: its commands wait in their partitions (none goes
round the retry tiers into a dead-letter topic), the ERP's keep flowing, and once the CRM is
back the backlog drains with every deal's write-backs in order.

The breaker timings and retry delays are shortened through settings, so that an outage of
``OUTAGE_S`` seconds here is, against them, what an outage of several minutes is against the
defaults (breaker 30 s, retry tiers 1 + 10 + 60 s).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from connectors.fakes import ServerThread, create_fake_app
from tests.connectors.sinks.conftest import SinkRig, order_command

pytestmark = pytest.mark.integration

DEALS = 6
STATUSES = ["CONFIRMED", "RELEASED", "PARTIALLY_SHIPPED", "SHIPPED", "INVOICED", "PAID"]


def _until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached in {timeout:.0f} s"
        time.sleep(0.1)


def _write_backs(rig: SinkRig) -> dict[str, list[str]]:
    """Per deal, the statuses the CRM accepted, each idempotency key counted at its first 200."""
    seen: set[str | None] = set()
    out: dict[str, list[str]] = {}
    for call in list(rig.fake.calls):
        if call.path.startswith("/deals/") and call.status == 200:
            if call.idempotency_key in seen:
                continue
            seen.add(call.idempotency_key)
            out.setdefault(call.path.rsplit("/", 1)[1], []).append(call.json()["status"])
    return out


@pytest.mark.parametrize(("mode", "outage_s"), [("503", 30.0), ("refused", 30.0)])
def test_a_crm_outage_dead_letters_nothing_keeps_the_erp_going_and_drains_in_order(
    sink_rig: Callable[..., Iterator[SinkRig]],
    caplog: pytest.LogCaptureFixture,
    mode: str,
    outage_s: float,
) -> None:
    caplog.set_level(logging.INFO)
    rig_options: dict[str, object] = {
        "kinds": ("create-order", "update-deal"),
        "breaker_failures": 3,
        "breaker_reset_s": 1.0,
        "inline_retries": 1,
        "inline_backoff_s": 0.02,
        "concurrency": 4,
    }
    with contextlib.contextmanager(sink_rig)([0.2, 0.5, 1.0], **rig_options) as rig:
        deals, orders = rig.topics["update-deal"], rig.topics["create-order"]
        stop = threading.Event()
        loop = threading.Thread(target=rig.loop.run, args=(stop,), daemon=True)
        loop.start()
        server: ServerThread | None = None
        try:

            def write_back(deal: int, step: int) -> None:
                command = order_command(
                    f"o-{deal}", event_type="UpdateDeal", deal=f"{deal}", status=STATUSES[step]
                )
                rig.produce(deals, f"deal-{deal}".encode(), command)

            for deal in range(DEALS):  # before the outage: delivered at once
                write_back(deal, 0)
            _until(lambda: sum(map(len, _write_backs(rig).values())) == DEALS, 30, "first")

            # the CRM goes down: 503 to every call, or nobody listening on its port
            if mode == "503":
                rig.fake.fail_path("/deals/*", 503)
            else:
                rig.crm_server.stop()
            down_at = time.monotonic()
            step, n = 1, 0
            while time.monotonic() - down_at < outage_s:  # the run goes on meanwhile
                if step < len(STATUSES):
                    for deal in range(DEALS):
                        write_back(deal, step)
                    step += 1
                rig.produce(orders, f"acct-{n}".encode(), order_command(f"during-{n}"))
                n += 1
                time.sleep(outage_s / 10)  # pacing of the produced load, not waiting on it
            # the ERP is another target: its orders kept going through the whole outage
            _until(lambda: len(rig.fake.orders) == n, 30, "orders during the outage")
            assert _write_backs(rig) == {f"{d}": STATUSES[:1] for d in range(DEALS)}

            # the CRM is back
            if mode == "503":
                rig.fake.clear_failures()
            else:
                server = ServerThread(create_fake_app(rig.fake), port=rig.crm_server.port).start()
            back_at = time.monotonic()
            _until(lambda: sum(map(len, _write_backs(rig).values())) == DEALS * step, 60, "drain")
            drained_s = time.monotonic() - back_at
        finally:
            stop.set()
            loop.join(30)
            if server is not None:
                server.stop()
    print(f"{mode}: {outage_s:.0f} s outage drained in {drained_s:.1f} s")

    stats = rig.loop.stats
    assert stats.dead_lettered == 0
    assert rig.total("interlock_dead_letters_total") == 0
    assert stats.held > 0  # the CRM's partition waited ...
    assert stats.retried <= 3  # ... instead of going round the tiers (a few before it opened)
    # every deal's write-backs arrived, each once, in the order they were written
    assert _write_backs(rig) == {f"{d}": STATUSES[:step] for d in range(DEALS)}

    ours = ("connectors", "interlock")
    messages = [r.getMessage() for r in caplog.records if r.name.startswith(ours)]
    opened = [m for m in messages if "crm circuit breaker opened" in m]
    assert len(opened) == 1, messages
    cause = "answered 503" if mode == "503" else "Connection refused"
    assert cause in opened[0], opened
    assert sum("crm circuit breaker closed" in m for m in messages) == 1, messages
    # an outage of hundreds of refused calls reads as a few lines
    assert len(messages) < 40, len(messages)
