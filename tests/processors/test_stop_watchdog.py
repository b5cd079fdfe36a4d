"""What the stop watchdog says when a worker's stop is stuck: where each task waits."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from processors.app import _waiting_tasks


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in its own thread, as the worker's runs beside the watchdog's."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


async def wait_for_the_coordinator(never: asyncio.Event) -> None:
    await never.wait()


async def commit_offsets(never: asyncio.Event) -> None:
    await wait_for_the_coordinator(never)


async def nested(depth: int, never: asyncio.Event) -> None:
    if depth:
        await nested(depth - 1, never)
    else:
        await wait_for_the_coordinator(never)


async def drain(never: asyncio.Event) -> None:
    await nested(6, never)


def waiting_line(
    loop: asyncio.AbstractEventLoop,
    waiter: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
    name: str,
) -> str:
    """What ``_waiting_tasks`` says of a task named ``name`` that runs ``waiter`` on ``loop``."""

    async def start() -> tuple[asyncio.Event, asyncio.Task[None]]:
        never = asyncio.Event()
        task = asyncio.create_task(waiter(never), name=name)
        await asyncio.sleep(0)  # the task runs up to its first wait before this returns
        return never, task

    never, task = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        waiting = _waiting_tasks(loop)
    finally:
        loop.call_soon_threadsafe(never.set)
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(task, 10), loop).result(10)
    [line] = [w for w in waiting if w.startswith(f"{name}: ")]
    return line.removeprefix(f"{name}: ")


def test_each_waiting_task_is_named_with_its_innermost_frames(
    loop: asyncio.AbstractEventLoop,
) -> None:
    line = waiting_line(loop, commit_offsets, "stop-commit")
    assert "wait_for_the_coordinator (test_stop_watchdog.py:" in line
    assert line.index("wait_for_the_coordinator") < line.index("commit_offsets")  # innermost first


def test_a_deep_chain_shows_where_it_waits_and_what_it_runs_for(
    loop: asyncio.AbstractEventLoop,
) -> None:
    shown = waiting_line(loop, drain, "stop-drain").split(" <- ")
    assert [s.split(" (")[0] for s in shown] == [
        "wait",  # asyncio.Event's
        "wait_for_the_coordinator",
        "nested",
        "nested",
        "...",
        "drain",
    ]


def test_no_loop_means_nothing_to_say() -> None:
    assert _waiting_tasks(None) == []
