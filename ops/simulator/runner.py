"""The running simulation: paces the scenario, sends webhooks, publishes CDC, serves the fakes.

Thin shell around the pure parts: the scenario decides what happens, ``wire`` renders it, the
fake ERP/CRM decide how the systems answer. Here: threads, HTTP, Kafka, the clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confluent_kafka import Producer

from connectors.fakes.server import ServerThread
from ops.simulator.actions import DriftAction
from ops.simulator.conventions import cdc_topic
from ops.simulator.delivery import WebhookSenders, WebhookTarget
from ops.simulator.desk import SimulatedDesk
from ops.simulator.drift import DriftMix
from ops.simulator.erp_api import create_erp_app
from ops.simulator.fake_crm import CrmDesk, create_crm_app
from ops.simulator.fake_erp import ErpBook, ErpTimings
from ops.simulator.outage import ApiOutage, OutageMiddleware
from ops.simulator.pacing import TokenBucket
from ops.simulator.runfile import RunFile
from ops.simulator.scenario import (
    ChangeAction,
    CreditHoldAction,
    FaultMix,
    Scenario,
    WebhookAction,
)
from ops.simulator.truth import Recorded, run_document
from ops.simulator.wire import (
    Dialect,
    debezium_envelope,
    debezium_key,
)

if TYPE_CHECKING:
    from ops.simulator.erp_postgres import ErpTables

__all__ = ["SimulationConfig", "Simulator"]

log = logging.getLogger(__name__)


@dataclass
class SimulationConfig:
    """Everything a run needs (the CLI builds it from options and Settings)."""

    rate: float
    duration_s: float | None
    seed: int
    webhooks_url: str
    secret: str
    ground_truth: Path
    dialect: Dialect = "hubspot"
    source: str = "acme"  # also the vendor of the example Standard-Webhooks mapping
    app_id: str = "interlock"
    erp_port: int = 0
    crm_port: int = 0
    cdc_prefix: str = "raw.erp."
    drain_s: float = 20.0
    drain_grace_s: float = 90.0
    """How much longer than ``drain_s`` the drain may wait for a lagging pipeline."""
    snapshot_every_s: float = 30.0
    senders: int = 32
    mix: FaultMix = field(default_factory=FaultMix)
    timings: ErpTimings = field(default_factory=ErpTimings)
    drift: DriftMix | None = None
    """Inject reconciliation drift at seeded moments (``--drift``); None: none."""
    reconcile_hold_s: float = 30.0
    """With drift: how long the fakes stay up after the drain, so that reconciliation's SLAs
    pass before they are swept (``reconcile check --against-apis``) and the run ends."""
    outages: tuple[ApiOutage, ...] = ()
    """Scheduled outages of the fake ERP and CRM APIs (``--fault``), from the run's start."""


DRAIN_QUIET_S = 5.0
"""The drain ends once the fake APIs saw no call for this long (and no order step is due)."""


class Simulator:
    """One run: scenario → receiver (HTTP) and CDC topics (Kafka); fake APIs answer the sinks."""

    def __init__(
        self,
        config: SimulationConfig,
        producer: Producer,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        abort: threading.Event | None = None,
        erp_tables: ErpTables | None = None,
        sweep: Callable[[str, str], dict[str, Any]] | None = None,
        review: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.abort = abort or threading.Event()
        """Set (SIGTERM): quit at once, without finishing the episode or draining."""
        self.producer = producer
        self.clock = clock
        self.wall = wall
        vendor = "hubspot" if config.dialect == "hubspot" else config.source
        self.scenario = Scenario(config.seed, config.mix, vendor, config.drift)
        self.sweep = sweep
        """With drift: ``sweep(erp_url, crm_url)`` checks the fakes against the command topics
        (``reconcile check --against-apis``) once the run has drained and held."""
        self.recorded = Recorded()
        self.erp_tables = erp_tables
        """Where the ERP's row changes go as SQL (``--erp postgres``); None: published directly."""
        self.change_erp = self.publish_change if erp_tables is None else erp_tables.apply
        self.book = ErpBook(
            self.change_erp,
            self.recorded,
            seed=config.seed,
            timings=config.timings,
            clock=clock,
            wall=wall,
        )
        target = WebhookTarget(config.webhooks_url, config.dialect, config.secret, config.source)
        self.webhooks = WebhookSenders(
            target,
            self.recorded,
            senders=config.senders,
            rate=config.rate,
            clock=clock,
            wall=wall,
            abort=self.abort,
        )
        self.desk = CrmDesk(self.recorded, self.webhooks.enqueue, config.app_id, wall)
        self.operators = (
            SimulatedDesk(
                review, producer, config.seed, partial(self.recorded.add, "review_decisions"), wall
            )
            if review is not None
            else None
        )
        """The simulated exception desk (``--decide``): decides cases while the run generates;
        ``review`` is the librdkafka configuration it reads ``review.cases`` with."""
        self.sent = 0
        self.delivery_errors = 0
        self.generation_s = 0.0
        self.run_file = RunFile(config.ground_truth)
        began = clock()

        def elapsed() -> float:
            return clock() - began

        def refused(target: str) -> Callable[[int], None]:
            return lambda status: self.recorded.outage_answer(target, status)

        erp_app = OutageMiddleware(
            create_erp_app(self.book), "erp", config.outages, elapsed, refused("erp")
        )
        crm_app = OutageMiddleware(
            create_crm_app(self.desk), "crm", config.outages, elapsed, refused("crm")
        )
        # the sinks call them on loopback, through no proxy: no proxy-header middleware, and
        # no Date or Server header to make for every answer
        lean: dict[str, Any] = {"access_log": False, "proxy_headers": False,
                                "server_header": False, "date_header": False}  # fmt: skip
        self.erp_server = ServerThread(erp_app, port=config.erp_port, **lean)
        self.crm_server = ServerThread(crm_app, port=config.crm_port, **lean)

    # Kafka ---------------------------------------------------------------------------------------
    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.delivery_errors += 1
            log.warning("CDC change not delivered: %s", err)

    def publish_change(self, change: ChangeAction) -> None:
        """Produce one Debezium change (batched by the producer's linger; never flushed here)."""
        value = debezium_envelope(change, int(self.wall() * 1000))
        topic = cdc_topic(change.table, self.config.cdc_prefix)
        while True:
            try:
                self.producer.produce(
                    topic, value, debezium_key(change), on_delivery=self._on_delivery
                )
                return
            except BufferError:
                self.producer.poll(0.05)

    # the run -------------------------------------------------------------------------------------
    def _dispatch(
        self, action: WebhookAction | ChangeAction | CreditHoldAction | DriftAction
    ) -> None:
        if isinstance(action, WebhookAction):
            for event in action.events:
                if str(event.get("subscriptionType", "")).startswith("deal.creation"):
                    self.desk.know_deal(str(event["objectId"]), str(event["associatedCompanyId"]))
            self.webhooks.enqueue(action)
        elif isinstance(action, ChangeAction):
            self.change_erp(action)
        elif isinstance(action, DriftAction):
            self._plan_drift(action)
        else:
            self.book.set_credit_hold(action.customer_number, action.hold, action.row)
        self.sent += 1

    def save(self, *, behind: bool = False, **meta: Any) -> None:
        """Write the ground truth and recordings so far (atomically); ``behind``: from a child
        process while this one goes on (:class:`~ops.simulator.runfile.RunFile`)."""
        doc = run_document(
            self.scenario.truth,
            self.recorded,
            seed=self.config.seed,
            rate=self.config.rate,
            dialect=self.config.dialect,
            sent=self.sent,
            generation_s=round(self.generation_s, 3),
            cdc_delivery_errors=self.delivery_errors,
            **self._erp_meta(),
            **meta,
        )
        if behind:
            self.run_file.save_behind(doc)
        else:
            self.run_file.save(doc)

    def _erp_meta(self) -> dict[str, Any]:
        if self.erp_tables is None:
            return {}
        return {
            "erp_rows_applied": self.erp_tables.applied,
            "erp_repeats_not_applied": self.erp_tables.skipped_repeats,
        }

    def start(self) -> None:
        """Start the fake APIs and the webhook senders."""
        self.erp_server.start()
        self.crm_server.start()
        if self.operators is not None:
            self.operators.start()
        self.webhooks.start()

    def run(
        self, stop: threading.Event, on_tick: Callable[[Simulator], None] | None = None
    ) -> None:
        """Generate until ``duration_s`` or ``stop``, finish the open episode, drain, save.

        At rate 0 nothing is generated: the fake ERP and CRM only serve the sinks (and whatever a
        user sends by hand) until ``stop``, as ``interlock up`` runs them without a simulation.
        """
        cfg = self.config
        if cfg.rate <= 0:
            self._serve(stop, on_tick)
            return
        bucket = TokenBucket(cfg.rate, self.clock)
        started = self.clock()
        last_tick = last_save = started
        actions = self.scenario.actions()
        while True:
            now = self.clock()
            ending = stop.is_set() or (
                cfg.duration_s is not None and now - started >= cfg.duration_s
            )
            if self.abort.is_set() or (ending and not self.scenario.episode_open):
                break
            self.generation_s = now - started
            if not ending:
                delay = bucket.wait()
                if delay > 0:
                    stop.wait(min(delay, 0.05))
                    continue
            self._dispatch(next(actions))
            if now - last_tick >= 0.2:
                last_tick = now
                self.book.advance()
                self.producer.poll(0)
                if on_tick is not None:
                    on_tick(self)
            if now - last_save >= cfg.snapshot_every_s:
                last_save = now
                self.save(behind=True, phase="running")
        if self.operators is not None:
            self.operators.stop_deciding()  # what was decided has the drain to take effect
        if self.abort.is_set():
            return  # close() saves what there is
        self.producer.flush(30)
        self.webhooks.settle()
        self._drain(stop, on_tick)
        self.webhooks.settle()
        if cfg.drift is not None:
            self._hold_and_sweep(stop, on_tick)
        self.save(phase="drained")

    # drift (--drift) -----------------------------------------------------------------------------
    def _plan_drift(self, action: DriftAction) -> None:
        case = action.case
        if case.kind == "erp_order_by_hand":
            self.book.hand_made_order(case)
        elif case.kind.startswith("erp_"):
            self.book.plan_drift(case)
        else:
            self.desk.plan_drift(case)

    def _hold_and_sweep(
        self, stop: threading.Event, on_tick: Callable[[Simulator], None] | None
    ) -> None:
        """Keep the fakes up ``reconcile_hold_s`` after the drain (reconciliation's SLAs pass,
        so every injected absence is due and a late false finding would show), then sweep
        them as ``reconcile check --against-apis`` does and record what it found."""
        end = self.clock() + self.config.reconcile_hold_s
        while self.clock() < end:
            if stop.is_set() or self.abort.is_set():
                self.recorded.api_sweep = {"error": "stopped before the sweep"}
                return
            self._tick(stop, on_tick)
        if self.sweep is None:
            self.recorded.api_sweep = {"error": "no sweep configured"}
            return
        try:
            self.recorded.api_sweep = self.sweep(self.erp_server.url, self.crm_server.url)
        except Exception as exc:  # the check reports it; the run itself is over
            log.warning("the sweep of the fake APIs failed: %s", exc)
            self.recorded.api_sweep = {"error": f"{type(exc).__name__}: {exc}"}

    def _serve(self, stop: threading.Event, on_tick: Callable[[Simulator], None] | None) -> None:
        while not stop.is_set():
            self._tick(stop, on_tick)
        self.producer.flush(2 if self.abort.is_set() else 30)
        self.webhooks.settle()
        self.save(phase="served")

    def _drain(self, stop: threading.Event, on_tick: Callable[[Simulator], None] | None) -> None:
        """Keep the ERP lifecycle and echoes going so open orders finish (a second stop quits).

        Runs ``drain_s``, then on while the sinks are still calling the fake APIs (a call in the
        last ``DRAIN_QUIET_S``) or an order still has lifecycle steps due, at most
        ``drain_grace_s`` longer: a pipeline that lags behind finds its APIs still there.
        """
        start = self.clock()
        cfg = self.config
        deadline, hard = start + cfg.drain_s, start + cfg.drain_s + cfg.drain_grace_s
        last, changed_at = self._api_activity(), start
        stop.clear()
        while not stop.is_set() and not self.abort.is_set():
            now = self.clock()
            activity = self._api_activity()
            if activity != last:
                last, changed_at = activity, now
            quiet = now - changed_at >= DRAIN_QUIET_S and not self.book.has_due()
            if now >= hard or (now >= deadline and quiet):
                break
            self._tick(stop, on_tick)
        self.producer.flush(2 if self.abort.is_set() else 30)

    def _tick(self, stop: threading.Event, on_tick: Callable[[Simulator], None] | None) -> None:
        """One beat of the fakes' lifecycle while the run serves, drains or holds."""
        self.book.advance()
        self.producer.poll(0.1)
        if on_tick is not None:
            on_tick(self)
        stop.wait(0.2)

    def _api_activity(self) -> int:
        r = self.recorded
        return r.erp_create_calls + len(r.erp_amendments) + len(r.crm_calls)

    def close(self) -> None:
        """Stop senders and servers, then save what they recorded up to the last answer.

        A sink may still call the fake ERP after the drain (when it lags behind): the final
        save comes after the servers stopped, so no answered call is missing from the record.
        """
        wait = 1.0 if self.abort.is_set() else 15.0
        self.webhooks.close(wait)
        if self.operators is not None:
            self.operators.close(wait)
        self.crm_server.stop()
        self.erp_server.stop()
        self.producer.flush(2 if self.abort.is_set() else 30)
        self.save(phase="done", aborted=self.abort.is_set())
        if self.erp_tables is not None:
            self.erp_tables.close()
