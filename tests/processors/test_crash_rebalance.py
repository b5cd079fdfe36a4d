"""SIGKILL mid-stream and a worker joining mid-stream: every valid quote gets exactly one order.

Delivery is at-least-once and Faust on this broker cannot use transactions, so after a
SIGKILL the records after the last committed offset are handled again. Order state follows
only commands read back from their topic, so nothing is lost; a command produced before the
kill but not yet read back is produced again with the SAME deterministic event id. Those raw
duplicate messages are expected and counted here (printed); the sinks send the event id as the
Idempotency-Key, so the ERP creates one order. What must hold: per quote exactly one DISTINCT
create-order event id, and no quote without one.

A worker that stops reading a partition it holds exits (``processors.stall``, 60 s here) and the
others take its partitions over; such an exit is allowed, printed with every worker's log, and
every quote must still get its one order.

Seen failing in about 1 CI run in 4 (and 1 of about 20 local runs under load), 700 to 1,092
quotes without an order. The report of one failure (INFO logs) showed all 5,000 quotes
consumed by the second and third workers and nothing stalled: the quotes were parked, waiting
for accounts that partition 0's ``accounts`` table did not hold. Its changelog had 27 records
when the first worker was killed, where partition 0's ~60 accounts (``identity``: 60) and their
updates should be. The likely cause: the `seen` marks of those account events reached their
changelog before the account writes did, so the next owner dropped the re-read events as
duplicates. Marks are now held until the outputs before them are durable
(``processors.output.TableChangelogs.hold``, ``test_table_changelogs.py``).
"""

from __future__ import annotations

import signal
import time
from collections import Counter, defaultdict

import pytest

from contracts import OrderEvent, encode
from processors.stall import STALLED
from tests.processors.conftest import ProcessorsEnv
from tests.processors.events import account_event, quote_event

pytestmark = pytest.mark.integration

QUOTES = 5000
ACCOUNTS = 200


def _command_count(env: ProcessorsEnv) -> int:
    return len(env.read_all(env.topics.create_order))


def _wait_count(env: ProcessorsEnv, at_least: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        count = _command_count(env)
        if count >= at_least:
            break
        time.sleep(0.2)
    return count


def _report(env: ProcessorsEnv) -> str:
    """What each worker held and consumed, and the end of its log (for a failure)."""
    out = []
    for n, worker in enumerate(env.workers):
        try:
            held = worker.metric("interlock_assigned_partitions")
            quotes = worker.metric("interlock_events_consumed_total", topic=env.topics.quote)
            parked = worker.metric("interlock_parked_joins")
            figures = f"holds {held:.0f} partitions, {quotes:.0f} quotes read, {parked:.0f} parked"
        except OSError as exc:
            figures = f"no metrics ({exc})"
        out.append(f"--- worker {n} (exit {worker.process.poll()}): {figures}\n")
        out.append(worker.output()[-2500:])
    return "".join(out)


def _send_quotes(env: ProcessorsEnv, numbers: range) -> None:
    for q in numbers:
        account = f"acc-{q % ACCOUNTS}"
        event = quote_event(f"q-{q}", account, lines=1)
        env.producer.produce(env.topics.quote, encode(event), account.encode())
        if q % 1000 == 999:
            env.producer.poll(0)
    env.producer.flush(60)


def test_sigkill_and_rebalance_mid_stream_keep_one_order_per_quote(proc_env: ProcessorsEnv) -> None:
    t = proc_env.topics
    for a in range(ACCOUNTS):
        proc_env.producer.produce(t.account, encode(account_event(f"acc-{a}")), f"acc-{a}".encode())
    _send_quotes(proc_env, range(QUOTES // 2))

    first = proc_env.start_worker()
    reached = _wait_count(proc_env, QUOTES // 8, timeout=60)
    assert reached >= QUOTES // 8, first.output()
    first.stop(signal.SIGKILL)
    killed_at = _command_count(proc_env)

    second = proc_env.start_worker()
    _wait_count(proc_env, killed_at + 200, timeout=60)
    third = proc_env.start_worker()  # joins mid-stream: partitions move between workers
    ticks = t.clock(proc_env.app_id)
    assert third.wait_metric("interlock_events_consumed_total", 1, topic=ticks) >= 1
    _send_quotes(proc_env, range(QUOTES // 2, QUOTES))

    def complete(events: list[object]) -> bool:
        return len({e.payload.quote_id for e in events if isinstance(e, OrderEvent)}) >= QUOTES

    commands = proc_env.wait_for(t.create_order, complete, timeout=180)
    ids_per_quote: dict[str, set[str]] = defaultdict(set)
    messages = Counter[str]()
    for command in commands:
        assert isinstance(command, OrderEvent)
        ids_per_quote[str(command.payload.quote_id)].add(command.event_id)
        messages[command.event_id] += 1
    missing = {f"q-{q}" for q in range(QUOTES)} - set(ids_per_quote)
    assert not missing, f"{len(missing)} quotes without an order\n{_report(proc_env)}"
    assert all(len(ids) == 1 for ids in ids_per_quote.values())
    raw_duplicates = sum(n - 1 for n in messages.values())
    print(
        f"\n{QUOTES} quotes, {len(commands)} create-order messages, killed at {killed_at}, "
        f"{raw_duplicates} raw duplicates (same event id, dropped downstream by Idempotency-Key)"
    )
    for worker in (second, third):  # both held partitions and handled quotes after the join
        if worker.process.poll() is not None:  # it stopped reading a partition and exited
            assert worker.process.returncode == STALLED, _report(proc_env)
            print(f"a worker exited with status {STALLED} (stalled); the others took over")
            print(_report(proc_env))
            continue
        assert worker.metric("interlock_events_consumed_total", topic=t.quote) > 0
