"""A live console view of a running stack, from the services' ``/metrics``, and a run summary.

``parse_samples`` turns Prometheus text into samples; ``take_snapshot`` condenses them (totals,
lag, handoff-latency buckets, dead letters by reason); ``build_view`` turns two snapshots into
rates and quantiles; ``render_view`` draws it (rich); ``summarize`` condenses the whole run,
including whether lag grew over the last 200 s. Only ``scrape`` does I/O.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.live import Live
from rich.table import Table

__all__ = [
    "LiveMonitor",
    "LiveView",
    "MetricSample",
    "RunSummary",
    "Snapshot",
    "build_view",
    "histogram_quantile",
    "lag_grew",
    "parse_samples",
    "render_summary",
    "render_view",
    "scrape",
    "summarize",
    "take_snapshot",
]

LATENCY = "interlock_handoff_latency_seconds"
TREND_WINDOW_S = 200.0


@dataclass(frozen=True)
class MetricSample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Snapshot:
    """Totals at one moment (counters are cumulative; lag is current)."""

    at: float
    consumed: float = 0.0
    produced: float = 0.0
    lag_messages: float = 0.0
    lag_seconds: float | None = None
    dead_letters: dict[str, float] = field(default_factory=dict)
    orders_created: float = 0.0
    buckets: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    parked: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Parked quotes by what they wait for: (how many, the longest wait in seconds)."""
    join_grace_s: float | None = None
    restarts: dict[str, float] = field(default_factory=dict)
    """Restarts per child of ``interlock up`` (from its supervisor's /metrics)."""


@dataclass(frozen=True)
class LiveView:
    """What the console shows."""

    events_in_per_s: float
    events_out_per_s: float
    lag_messages: float
    lag_seconds: float | None
    latency: dict[str, tuple[float | None, float | None]]
    dead_letters: dict[str, float]
    orders_created: float
    parked: dict[str, tuple[float, float]] = field(default_factory=dict)
    join_grace_s: float | None = None
    restarts: dict[str, float] = field(default_factory=dict)


def parse_samples(text: str) -> list[MetricSample]:
    """Every sample of a Prometheus text exposition."""
    return [
        MetricSample(s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus' ``histogram_quantile``: linear interpolation in cumulative ``(le, count)``."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_le, lower_count = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if math.isinf(le):
                return lower_le
            if count == lower_count:
                return le
            return lower_le + (le - lower_le) * (rank - lower_count) / (count - lower_count)
        lower_le, lower_count = le, count
    return ordered[-1][0]


def take_snapshot(samples: Iterable[MetricSample], at: float) -> Snapshot:
    """Sum the samples of every scraped service into one snapshot."""
    consumed = produced = lag = orders = 0.0
    lag_s: float | None = None
    dead: dict[str, float] = {}
    buckets: dict[str, dict[float, float]] = {}
    parked: dict[str, list[float]] = {}
    grace: float | None = None
    restarts: dict[str, float] = {}
    for s in samples:
        if s.name == "interlock_events_consumed_total":
            consumed += s.value
        elif s.name == "interlock_events_produced_total":
            produced += s.value
        elif s.name == "interlock_consumer_lag_messages":
            lag += s.value
        elif s.name == "interlock_consumer_lag_seconds" and not math.isnan(s.value):
            lag_s = max(lag_s or 0.0, s.value)
        elif s.name == "interlock_dead_letters_total":
            reason = s.labels.get("reason", "?")
            dead[reason] = dead.get(reason, 0.0) + s.value
        elif s.name == "interlock_sink_calls_total" and s.labels.get("target") == "erp":
            orders += s.value if s.labels.get("outcome") == "ok" else 0.0
        elif s.name in ("interlock_parked_quotes", "interlock_parked_oldest_age_seconds"):
            slot = parked.setdefault(s.labels.get("waiting_for", "?"), [0.0, 0.0])
            if s.name == "interlock_parked_quotes":
                slot[0] += s.value
            else:
                slot[1] = max(slot[1], s.value)
        elif s.name == "interlock_join_grace_seconds":
            grace = s.value
        elif s.name == "interlock_service_restarts_total":
            service = s.labels.get("service", "?")
            restarts[service] = restarts.get(service, 0.0) + s.value
        elif s.name == LATENCY + "_bucket":
            flow = buckets.setdefault(s.labels.get("flow", "?"), {})
            le = float(s.labels.get("le", "inf"))
            flow[le] = flow.get(le, 0.0) + s.value
    return Snapshot(
        at,
        consumed,
        produced,
        lag,
        lag_s,
        dead,
        orders,
        {f: sorted(b.items()) for f, b in buckets.items()},
        {reason: (n, age) for reason, (n, age) in parked.items()},
        grace,
        restarts,
    )


def _delta(
    cur: list[tuple[float, float]], prev: list[tuple[float, float]] | None
) -> list[tuple[float, float]]:
    before = dict(prev or [])
    return [(le, count - before.get(le, 0.0)) for le, count in cur]


def build_view(
    prev: Snapshot | None, cur: Snapshot, orders_created: float | None = None
) -> LiveView:
    """Rates since ``prev``; latency quantiles of the window (or since start without ``prev``)."""
    dt = (cur.at - prev.at) if prev is not None else 0.0
    rate_in = (cur.consumed - prev.consumed) / dt if prev is not None and dt > 0 else 0.0
    rate_out = (cur.produced - prev.produced) / dt if prev is not None and dt > 0 else 0.0
    latency: dict[str, tuple[float | None, float | None]] = {}
    for flow, cum in cur.buckets.items():
        window = _delta(cum, prev.buckets.get(flow) if prev is not None else None)
        if not window or window[-1][1] <= 0:
            window = cum
        latency[flow] = (histogram_quantile(0.5, window), histogram_quantile(0.99, window))
    created = orders_created if orders_created is not None else cur.orders_created
    return LiveView(
        max(rate_in, 0.0),
        max(rate_out, 0.0),
        cur.lag_messages,
        cur.lag_seconds,
        latency,
        dict(cur.dead_letters),
        created,
        dict(cur.parked),
        cur.join_grace_s,
        dict(cur.restarts),
    )


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def render_view(view: LiveView, title: str = "Interlock") -> Table:
    """A compact rich table of the live view."""
    table = Table("measure", "value", title=title)
    table.add_row("events in / s", f"{view.events_in_per_s:,.0f}")
    table.add_row("events out / s", f"{view.events_out_per_s:,.0f}")
    table.add_row("lag", f"{view.lag_messages:,.0f} msgs, {_secs(view.lag_seconds)}")
    for flow, (p50, p99) in sorted(view.latency.items()):
        table.add_row(f"handoff {flow}", f"p50 {_secs(p50)} · p99 {_secs(p99)}")
    for reason, n in sorted(view.dead_letters.items()):
        table.add_row(f"dead letters {reason}", f"{n:,.0f}")
    table.add_row("orders created", f"{view.orders_created:,.0f}")
    for reason, (n, age) in sorted(view.parked.items()):
        table.add_row(f"parked, waiting for {reason}", _parked(n, age, view.join_grace_s))
    for service, n in sorted(view.restarts.items()):
        if n > 0:
            table.add_row(f"[red]restarts of {service}[/]", f"{n:,.0f}")
    return table


def _parked(n: float, longest_s: float, grace_s: float | None) -> str:
    if n <= 0:
        return "0"
    left = f", {max(grace_s - longest_s, 0.0):.0f} s left" if grace_s is not None else ""
    return f"{n:,.0f} (longest {longest_s:.0f} s{left} before it is dead-lettered)"


LAG_NOISE_MSGS = 100.0
"""Lag rises and falls by batches of this order on a stack that keeps up; a rise over the
trend window smaller than it (or than a quarter of the window's median) is noise, not a trend."""


def lag_grew(
    points: Sequence[tuple[float, float]], window_s: float = TREND_WINDOW_S
) -> bool | None:
    """Whether lag grew over the last ``window_s``: the least-squares line rises over the window
    by more than :data:`LAG_NOISE_MSGS` and a quarter of the median lag, and it ends higher
    than it started.

    None when the samples do not span at least half the window.
    """
    if not points:
        return None
    end = points[-1][0]
    recent = [(t, v) for t, v in points if t >= end - window_s]
    if len(recent) < 3 or recent[-1][0] - recent[0][0] < window_s / 2:
        return None
    n = len(recent)
    mean_t = sum(t for t, _ in recent) / n
    mean_v = sum(v for _, v in recent) / n
    var = sum((t - mean_t) ** 2 for t, _ in recent)
    slope = sum((t - mean_t) * (v - mean_v) for t, v in recent) / var if var else 0.0
    rise = slope * (recent[-1][0] - recent[0][0])
    median = sorted(v for _, v in recent)[n // 2]
    return rise > max(LAG_NOISE_MSGS, median / 4) and recent[-1][1] > recent[0][1]


LATENCY_TARGET_S = 1.0
"""Handoff latency p99 the summary checks every flow against."""


@dataclass(frozen=True)
class RunSummary:
    """End-of-run counts, latency and lag trend."""

    consumed: float
    produced: float
    orders_created: float
    dead_letters: dict[str, float]
    latency: dict[str, tuple[float | None, float | None]]
    final_lag: float
    lag_growing: bool | None
    lag_window: tuple[float, float, float] | None = None
    """Lag over the trend window of the load: (first, median, last) sample; None: no samples."""


def summarize(
    snapshots: Sequence[Snapshot],
    orders_created: float | None = None,
    load_ended_at: float | None = None,
) -> RunSummary:
    """Condense periodic snapshots (oldest first) into the end-of-run summary.

    The lag trend is judged over the load only (snapshots up to ``load_ended_at``, when given):
    after the load the stack drains and its lag falls whether or not it kept up.
    """
    last = snapshots[-1] if snapshots else Snapshot(0.0)
    latency = {
        f: (histogram_quantile(0.5, b), histogram_quantile(0.99, b))
        for f, b in last.buckets.items()
    }
    during = [
        (s.at, s.lag_messages) for s in snapshots if load_ended_at is None or s.at <= load_ended_at
    ]
    trend = lag_grew(during)
    window = [v for t, v in during if t >= during[-1][0] - TREND_WINDOW_S] if during else []
    created = orders_created if orders_created is not None else last.orders_created
    return RunSummary(
        last.consumed,
        last.produced,
        created,
        dict(last.dead_letters),
        latency,
        last.lag_messages,
        trend,
        (window[0], sorted(window)[len(window) // 2], window[-1]) if window else None,
    )


def render_summary(summary: RunSummary) -> Table:
    table = Table("measure", "value", title="Run summary")
    table.add_row("events consumed", f"{summary.consumed:,.0f}")
    table.add_row("events produced", f"{summary.produced:,.0f}")
    table.add_row("orders created", f"{summary.orders_created:,.0f}")
    for reason, n in sorted(summary.dead_letters.items()):
        table.add_row(f"dead letters {reason}", f"{n:,.0f}")
    for flow, (p50, p99) in sorted(summary.latency.items()):
        table.add_row(f"handoff {flow}", f"p50 {_secs(p50)} · p99 {_secs(p99)}")
    trend = {None: "not enough samples", True: "[red]growing[/]", False: "[green]stable[/]"}
    seen = ""
    if summary.lag_window is not None:
        first, median, last_in = summary.lag_window
        seen = f" ({first:,.0f} → {last_in:,.0f} msgs, median {median:,.0f})"
    table.add_row(
        "lag (last 200 s of the load)",
        f"{trend[summary.lag_growing]}{seen}; {summary.final_lag:,.0f} msgs at the end",
    )
    p99s = {f: p99 for f, (_, p99) in summary.latency.items() if p99 is not None}
    slow = {f: p99 for f, p99 in p99s.items() if p99 >= LATENCY_TARGET_S}
    if p99s:
        verdict = (
            "[green]yes[/]"
            if not slow
            else "[red]no[/]: " + ", ".join(f"{f} {_secs(v)}" for f, v in sorted(slow.items()))
        )
        table.add_row(f"handoff p99 under {_secs(LATENCY_TARGET_S)}", verdict)
    return table


def scrape(urls: Iterable[str], client: httpx.Client) -> list[MetricSample]:
    """Every sample of every ``/metrics`` URL that answers (one that does not is skipped)."""
    samples: list[MetricSample] = []
    for url in urls:
        try:
            response = client.get(url, timeout=2.0)
            response.raise_for_status()
        except httpx.HTTPError:
            continue
        samples.extend(parse_samples(response.text))
    return samples


class LiveMonitor:
    """Scrape the services every ``interval_s`` and show the live view (rich ``Live``).

    ``run(stop)`` returns the end-of-run summary; snapshots are kept (bounded) for the lag trend.
    ``orders_created`` optionally overrides the count (e.g. the fake ERP's own tally).
    """

    def __init__(
        self,
        urls: Sequence[str],
        console: Console,
        interval_s: float = 2.0,
        orders_created: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.urls = list(urls)
        self.console = console
        self.interval_s = interval_s
        self.orders_created = orders_created
        self.clock = clock
        self.snapshots: deque[Snapshot] = deque(maxlen=2000)
        self.load_ended_at: float | None = None

    def load_ended(self) -> None:
        """Mark the end of the load: the lag trend is judged up to here, not over the drain."""
        if self.load_ended_at is None:
            self.load_ended_at = self.clock()

    def sample(self, client: httpx.Client) -> LiveView:
        """Take one snapshot and return the view since the previous one."""
        prev = self.snapshots[-1] if self.snapshots else None
        cur = take_snapshot(scrape(self.urls, client), self.clock())
        self.snapshots.append(cur)
        created = self.orders_created() if self.orders_created is not None else None
        return build_view(prev, cur, created)

    def run(self, stop: threading.Event) -> RunSummary:
        """Refresh until ``stop`` is set; then print and return the summary."""
        with httpx.Client() as client, Live(console=self.console, auto_refresh=False) as live:
            while not stop.is_set():
                live.update(render_view(self.sample(client)), refresh=True)
                stop.wait(self.interval_s)
            self.sample(client)
        created = self.orders_created() if self.orders_created is not None else None
        summary = summarize(list(self.snapshots), created, self.load_ended_at)
        self.console.print(render_summary(summary))
        return summary
