"""Records are delivered to streams directly when nothing blocks, and race flow suspension
in Faust's ``wait_first`` as before when something does."""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from mode import Service

from processors.delivery import _Resumed, _wait_first, install_direct_delivery

pytestmark = pytest.mark.unit


class Fetcher(Service):
    """Stands in for the consumer: ``_wait_first`` uses only Service state."""


def _full_buffer() -> asyncio.Queue[int]:
    """A stream buffer with no room: a delivery into it has to wait."""
    room: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
    room.put_nowait(0)
    return room


def test_direct_delivery_is_installed_once() -> None:
    install_direct_delivery()
    install_direct_delivery()
    assert Consumer.wait_first is _wait_first


def test_a_delivery_that_does_not_block_completes_without_tasks_or_warnings() -> None:
    async def main() -> None:
        fetcher = Fetcher()
        suspended = asyncio.Event()
        delivered: list[int] = []

        async def deliver(n: int) -> int:
            delivered.append(n)
            return n * 2

        created: list[Any] = []
        loop = asyncio.get_running_loop()

        def counting(loop: Any, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            created.append(coro)
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(counting)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = await _wait_first(fetcher, deliver(21), suspended.wait())
            gc.collect()
        loop.set_task_factory(None)
        assert delivered == [21]
        assert result.results == [42]
        assert not result.stopped
        assert created == []  # Faust's wait_first makes four tasks here

    asyncio.run(main())


def test_a_blocked_delivery_finishes_when_it_can() -> None:
    async def main() -> None:
        fetcher = Fetcher()
        suspended = asyncio.Event()
        room = _full_buffer()
        steps: list[str] = []

        async def deliver() -> str:
            steps.append("started")
            await room.put(1)
            steps.append("put")
            return "done"

        waiting = asyncio.ensure_future(_wait_first(fetcher, deliver(), suspended.wait()))
        await asyncio.sleep(0.01)
        assert steps == ["started"]
        assert not waiting.done()
        assert room.get_nowait() == 0  # the stream takes one: room again
        result = await asyncio.wait_for(waiting, 1)
        assert steps == ["started", "put"]
        assert "done" in result.results
        assert room.get_nowait() == 1

    asyncio.run(main())


def test_a_blocked_delivery_gives_way_to_flow_suspension_and_is_cancelled() -> None:
    async def main() -> None:
        fetcher = Fetcher()
        suspended = asyncio.Event()
        room = _full_buffer()
        outcome: list[str] = []

        async def deliver() -> None:
            try:
                await room.put(1)
            except asyncio.CancelledError:
                outcome.append("cancelled")
                raise

        waiting = asyncio.ensure_future(_wait_first(fetcher, deliver(), suspended.wait()))
        await asyncio.sleep(0.01)
        suspended.set()  # a rebalance suspends the flow
        result = await asyncio.wait_for(waiting, 1)
        await asyncio.sleep(0)
        assert len(result.done) == 1
        assert not result.stopped
        assert outcome == ["cancelled"]
        assert room.qsize() == 1  # the record was not delivered

    asyncio.run(main())


def test_a_stopped_consumer_keeps_fausts_behaviour() -> None:
    async def main() -> None:
        fetcher = Fetcher()
        await fetcher.stop()

        async def deliver() -> None:
            return None

        result = await _wait_first(fetcher, deliver(), asyncio.Event().wait())
        assert result.stopped  # what Faust's wait_first says for a stopped service

    asyncio.run(main())


def test_a_failing_delivery_raises_as_in_wait_first() -> None:
    async def main() -> None:
        async def deliver() -> Any:
            raise RuntimeError("no such stream")

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(RuntimeError, match="no such stream"):
                await _wait_first(Fetcher(), deliver(), asyncio.Event().wait())
            gc.collect()

    asyncio.run(main())


def test_resumed_passes_a_cancellation_into_the_coroutine() -> None:
    async def main() -> None:
        seen: list[str] = []

        async def sleeper() -> None:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

        coro = sleeper()
        pending = coro.send(None)
        task = asyncio.ensure_future(_Resumed(coro, pending))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert seen == ["cancelled"]

    asyncio.run(main())
