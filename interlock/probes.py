"""Probes of a running stack through its services' ``/metrics``: readiness and consumer lag.

``interlock up`` uses them to start the simulator only once every consumer holds its partitions,
and to wait, before checking invariants, until every consumer group has caught up.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable, Iterator

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from rich.console import Console

from contracts.topics import CLOCK_SUFFIX

__all__ = ["assigned_partitions", "consumer_lag", "wait_for_drain", "wait_until_ready"]


def _samples(url: str, metric: str, timeout: float) -> Iterator[Sample] | None:
    """The samples of ``metric`` that ``url`` exposes; None if it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            text = response.read().decode()
    except OSError:
        return None
    return (
        sample
        for family in text_string_to_metric_families(text)
        if family.name == metric
        for sample in family.samples
    )


def assigned_partitions(metrics_url: str, timeout: float = 2.0) -> int | None:
    """Partitions held by the consumers behind ``metrics_url``; None if it does not answer."""
    samples = _samples(metrics_url, "interlock_assigned_partitions", timeout)
    return None if samples is None else int(sum(s.value for s in samples))


def consumer_lag(url: str, timeout: float = 5.0) -> float | None:
    """Total lag of Interlock's consumer groups on work topics, as the exporter at ``url`` says.

    The worker's clock topic is left out (``contracts.topics.CLOCK_SUFFIX``): its committed lag
    is 0 only by chance, and waiting for it to read 0 twice in a row kept ``--check`` waiting
    60-100 s after every other topic had caught up.
    """
    samples = _samples(url, "interlock_consumer_lag_messages", timeout)
    if samples is None:
        return None
    lags = [
        s.value
        for s in samples
        if s.labels.get("group", "").startswith("interlock")
        and not s.labels.get("topic", "").endswith(CLOCK_SUFFIX)
    ]
    return sum(lags) if lags else None


def wait_until_ready(
    services: dict[str, str],
    timeout: float,
    stop: threading.Event,
    *,
    give_up: Callable[[], bool] = lambda: False,
    interval: float = 0.25,
) -> list[str]:
    """Wait until every service (name -> metrics URL) holds partitions; the ones that do not.

    A consumer group's first join takes a while (on the embedded broker about half the session
    timeout): events sent before every member holds its partitions wait that long, which is not
    the latency of the running stack.
    """
    waiting = dict(services)
    deadline = time.monotonic() + timeout
    while waiting and not stop.is_set():
        for name, url in list(waiting.items()):
            if (assigned_partitions(url) or 0) > 0:
                del waiting[name]
        if not waiting or time.monotonic() >= deadline or give_up():
            break
        stop.wait(interval)
    return sorted(waiting)


def wait_for_drain(url: str, timeout: float, console: Console, stop: threading.Event) -> None:
    """Before checking invariants, wait until every Interlock consumer group has caught up."""
    deadline = time.monotonic() + timeout
    zero_streak = 0
    lag: float | None = None
    while time.monotonic() < deadline and not stop.is_set():
        lag = consumer_lag(url)
        zero_streak = zero_streak + 1 if lag == 0 else 0
        if zero_streak >= 2:
            console.print("caught up: consumer lag is 0")
            return
        stop.wait(2.5)
    if lag is None:
        console.print(
            f"[yellow]consumer lag unknown after {timeout:.0f} s[/]: the lag exporter at {url} "
            "did not answer or reported no Interlock consumer group; checking anyway"
        )
    else:
        console.print(
            f"[yellow]still {lag:,.0f} messages behind after {timeout:.0f} s; checking anyway[/]"
        )
