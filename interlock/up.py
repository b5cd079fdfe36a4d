"""``interlock up``: the whole stack on one machine, started and stopped as one.

Starts the embedded broker when no Kafka is configured, applies the topic catalog, starts every
service as a child process against that broker (as they run in production), serves the
supervisor's own ``/metrics``, and on SIGINT/SIGTERM or after ``--for`` stops all of it. What
runs beside the services (the simulator) is a :class:`~interlock.companion.Companion` handed in.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Protocol

from rich.console import Console

from contracts.topics import load_catalog
from interlock.broker import (
    BrokerChoice,
    BrokerProcess,
    choose_embedded,
    embedded_broker,
    embedded_run_settings,
)
from interlock.companion import Companion, NothingAlongside, RunningStack
from interlock.kafka import make_admin
from interlock.metrics import MetricsEndpoint, serve_metrics
from interlock.probes import wait_until_ready
from interlock.provisioning import TopicReport, apply_catalog
from interlock.resources import Usage, sample
from interlock.services import (
    CannotStartError,
    ServicePlan,
    child_env,
    consumers,
    metrics_url,
    plan_services,
    reserve_port,
    webhooks_url,
)
from interlock.settings import Settings
from interlock.stackfile import StackState, remove_stack, write_stack
from interlock.supervisor import RestartPolicy, Supervisor
from interlock.upreport import UpMetrics, UsageSamples, banner, child_event_reporter, running_pids

__all__ = ["Monitor", "UpHooks", "UpOptions", "run_up"]


@dataclass
class UpOptions:
    """What ``interlock up`` was asked to do."""

    duration: float | None = None
    log_dir: Path = Path(".interlock/logs")
    metrics_port: int | None = None
    memory_sample_at: float = 120.0
    """When the early resources sample is taken (at most half of ``duration``)."""
    ready_timeout: float = 60.0
    """Longest wait for every consumer to hold its partitions before the companion starts."""
    workers: int = 1


class Monitor(Protocol):
    """A live view of the running stack (the simulator's ``LiveMonitor``)."""

    def run(self, stop: threading.Event) -> object: ...

    def load_ended(self) -> None: ...


@dataclass
class UpHooks:
    """What the composition root plugs into ``up``: the live view and what runs beside the
    services (the simulator, its fake APIs, the check of its invariants)."""

    make_monitor: Callable[[list[str], Console], Monitor] | None = None
    companion: Companion = field(default_factory=NothingAlongside)


@dataclass
class _LiveView:
    """The live view's thread, started once the banner is out."""

    monitor: Monitor | None = None
    thread: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.thread = threading.Thread(
            target=monitor.run, args=(self.stop,), name="live-view", daemon=True
        )
        self.thread.start()

    def end(self, timeout: float) -> None:
        if self.thread is not None:
            self.stop.set()
            self.thread.join(timeout)
            self.thread = None


class _Up:
    """One run of ``up``: its steps in order, and what :meth:`stop` has to take down."""

    def __init__(
        self, settings: Settings, options: UpOptions, console: Console, hooks: UpHooks
    ) -> None:
        self.settings = settings
        self.options = options
        self.console = console
        self.hooks = hooks
        self.companion = hooks.companion
        self.stop_event = threading.Event()
        self.supervisor = Supervisor(options.log_dir, _restart_policy(settings))
        self.broker: BrokerProcess | None = None
        self.choice: BrokerChoice | None = None
        self.endpoint: MetricsEndpoint | None = None
        self.live = _LiveView()
        self.usage: UsageSamples | None = None
        self.codes: dict[str, int | None] = {}

    def run(self) -> int:
        """Start the stack, run it until it ends, report; the exit code."""
        # every fixed port is checked before anything starts: a busy one fails in a second
        plan_services(self.settings, self.options.workers)
        self.resolve_broker()
        topics = self.provision_topics()
        metrics = self.start_supervision()
        stack = RunningStack(
            self.settings,
            self.supervisor,
            self.console,
            self.stop_event,
            self.options.log_dir.parent,
            self.options.duration,
        )
        extra_env = self.companion.prepare(stack)
        stack.plans = self.start_services(metrics, extra_env)
        self.await_ready(stack.plans)
        if self.stop_event.is_set():
            return 0
        self.companion.start(stack)
        self.announce(topics, stack.plans)
        self.start_live_view(stack.plans)
        exit_code = self.watch(stack)
        self.companion.report(self.console)
        self.report_usage()
        self.live.end(30)
        if not self.companion.verdict(stack):
            exit_code = 1
        return exit_code

    def resolve_broker(self) -> None:
        """The configured Kafka, or a fresh embedded broker for this run."""
        if not self.settings.embedded:
            return
        self.choice = choose_embedded(self.settings)
        # a fresh log directory per run: the worker tables and --check start from nothing,
        # while a broker restarted within the run keeps what it had (same data directory)
        data_dir = self.options.log_dir.parent / "kafka"
        shutil.rmtree(data_dir, ignore_errors=True)
        self.broker = embedded_broker(self.settings, self.choice.kind, data_dir=data_dir).start()
        self.settings = embedded_run_settings(self.settings, self.broker, self.options.workers)

    def provision_topics(self) -> TopicReport:
        """Apply the topic catalog; drift is shown, not fatal."""
        topics = self.settings.topics
        report = apply_catalog(
            make_admin(self.settings),
            load_catalog(),
            topics.partitions,
            topics.retention_ms,
            topics.replication_factor,
        )
        for drift in report.drift:
            self.console.print(f"[red]topic drift[/]: {drift}")
        return report

    def start_supervision(self) -> UpMetrics:
        """Watch the children (the broker among them) and serve ``up``'s own ``/metrics``."""
        metrics = UpMetrics()
        self.supervisor.on_event = child_event_reporter(self.console, metrics, self.broker)
        if self.broker is not None:
            self.supervisor.adopt(self.broker, stop_last=True)
            metrics.running.labels(self.broker.name).set(1)
        self.supervisor.watch()
        port = self.options.metrics_port
        port = port if port is not None else self.settings.metrics.port
        self.endpoint = serve_metrics(
            metrics.registry, self.settings.metrics.host, reserve_port(port, "up's metrics")
        )
        return metrics

    def start_services(self, metrics: UpMetrics, extra_env: dict[str, str]) -> list[ServicePlan]:
        """Start every service as a child, each with its own port and client id."""
        plans = plan_services(self.settings, self.options.workers, self.options.log_dir.parent)
        for plan in plans:
            argv = [sys.executable, "-m", "interlock.cli", *plan.args]
            env = {**child_env(self.settings, plan), **extra_env}
            self.supervisor.start(plan.name, argv, env)
            metrics.running.labels(plan.name).set(1)
        return plans

    def await_ready(self, plans: list[ServicePlan]) -> None:
        """Wait until every consumer holds its partitions (or the timeout: then go on)."""
        began = time.monotonic()
        not_ready = wait_until_ready(
            consumers(self.settings, plans),
            self.options.ready_timeout,
            self.stop_event,
            give_up=lambda: self.supervisor.failed is not None,
        )
        if self.stop_event.is_set():
            return
        if not_ready:
            self.console.print(
                f"[yellow]not ready after {self.options.ready_timeout:g} s[/]: "
                f"{', '.join(not_ready)} hold no partitions yet; going on"
            )
        else:
            self.console.print(
                f"ready in {time.monotonic() - began:.1f} s: every consumer holds its partitions"
            )

    def announce(self, topics: TopicReport, plans: list[ServicePlan]) -> None:
        """Write the stack file and show the banner: where everything is."""
        kafka = self.settings.kafka
        state = StackState(
            pid=os.getpid(),
            bootstrap_servers=kafka.bootstrap_servers or "",
            broker_kind=kafka.broker_kind,
            partitions=self.settings.topics.partitions,
            webhooks_url=webhooks_url(plans),
            metrics={p.name: metrics_url(p.metrics_port) for p in plans},
            log_dir=str(self.options.log_dir),
        )
        state = self.companion.record(state)
        stack_file = write_stack(state)
        assert self.endpoint is not None
        table = banner(
            self.settings,
            topics,
            self.endpoint.url,
            plans,
            self.broker,
            self.choice,
            self.companion.banner(),
        )
        table.add_row("logs", str(self.options.log_dir))
        table.add_row("stack file", f"{stack_file} (other commands here use it)")
        self.console.print(table)
        self.console.print(f"Other shells: {state.export_line()}", style="dim")
        self.console.print("Press Ctrl-C to stop.", style="dim")

    def start_live_view(self, plans: list[ServicePlan]) -> None:
        """The live view: always when the companion asks for it, else when a person watches."""
        watched = self.companion.live or self.console.is_terminal
        if self.hooks.make_monitor is None or not watched:
            return
        assert self.endpoint is not None
        urls = [self.endpoint.url] + [
            url for p in plans for url in p.endpoints.values() if url.endswith("/metrics")
        ]
        self.live.start(self.hooks.make_monitor(urls, self.console))

    def watch(self, stack: RunningStack) -> int:
        """Run until a signal, the time limit, the companion's end or a crash loop; exit code."""
        options = self.options
        limit = self.companion.run_limit(stack)
        started = time.monotonic()
        deadline = started + limit if limit else None
        # the early sample falls inside the load, so that CPU before and after it are comparable
        early_at = options.memory_sample_at
        if options.duration:
            early_at = min(early_at, options.duration / 2)
        usage = self.usage = UsageSamples(self._sample())
        while not self.stop_event.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if not usage.early and now - started >= early_at:
                usage.early = self._sample()
            if options.duration and not usage.load_end and now - started >= options.duration:
                usage.load_end = self._sample()
                if self.live.monitor is not None:
                    self.live.monitor.load_ended()
            ended = self.companion.ended()
            if ended is not None:
                return ended
            if self.supervisor.failed is not None:
                self.console.print(f"[red]stopping the stack[/]: {self.supervisor.failed}")
                return 1
            self.stop_event.wait(0.5)
        return 0

    def _sample(self) -> dict[str, Usage]:
        return sample(running_pids(self.supervisor, self.broker))

    def report_usage(self) -> None:
        """The resources table, once the run got past its early sample."""
        if self.usage is None or not self.usage.early:
            return
        kind = self.broker.kind if self.broker is not None else None
        self.usage.report(self.console, self._sample(), kind)

    def stop(self) -> None:
        """Stop everything that was started, the broker last; say how each child ended."""
        self.live.end(10)
        remove_stack(os.getpid())
        self.codes = self.supervisor.stop_all(self.settings.supervision.stop_grace_s)
        if self.endpoint is not None:
            self.endpoint.stop()
        self.companion.close()
        if self.broker is not None:
            self.broker.stop()


def run_up(
    settings: Settings,
    options: UpOptions,
    console: Console | None = None,
    hooks: UpHooks | None = None,
) -> int:
    """Run the stack until a signal or ``options.duration``; returns the exit code."""
    console = console or Console()
    up = _Up(settings, options, console, hooks or UpHooks())

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        console.print(f"[yellow]{signal.Signals(signum).name} received, stopping…[/]")
        up.stop_event.set()

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return up.run()
    except CannotStartError as exc:
        what = f" {exc.what}" if exc.what else ""
        console.print(f"[red]cannot start{what}:[/] {exc}")
        return 2
    finally:
        up.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stopped = ", ".join(f"{k}={v}" for k, v in up.codes.items())
        console.print(f"stopped: {stopped or 'nothing'}")


def _restart_policy(settings: Settings) -> RestartPolicy:
    config = settings.supervision
    return RestartPolicy(
        backoff_s=config.restart_backoff_s,
        backoff_max_s=config.restart_backoff_max_s,
        max_restarts=config.crash_loop_restarts,
        window_s=config.crash_loop_window_s,
    )
