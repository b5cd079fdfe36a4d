"""Run one fault case: ``interlock up --simulate … --check`` with the fault injected on time.

The runner starts ``interlock up`` in a directory of its own (free ports, the embedded broker or
a three-node cluster it starts itself), waits until the stack is ready, injects the fault at its
planned moment (a signal to a child of ``up``, or outages the simulator plays on schedule), and
samples the consumer lag the whole time. When ``up`` has checked the invariants it reads the
verdict (``check.json``): orders lost are the valid quotes ``orders_complete`` found without an
order; orders doubled are counted from what the fake ERP recorded (every order past a quote's
first).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from interlock.apache_kafka import KafkaCluster
from interlock.stackfile import read_stack
from ops.chaos.cases import Planned
from ops.simulator.truth import load_run

__all__ = ["Outcome", "descendants", "recovered_at", "run_case", "total_lag"]

READY = "Press Ctrl-C to stop"
LAG_METRIC = "interlock_consumer_lag_messages"


@dataclass
class Outcome:
    """What one fault case did to the stack, and what the stack did about it."""

    case: str
    description: str
    fault_at_s: float
    fault_s: float
    exit_code: int | None
    invariants: list[dict[str, Any]] = field(default_factory=list)
    orders_expected: int = 0
    orders_lost: int = 0
    orders_duplicated: int = 0
    unexpected_dead_letters: int | None = None
    recovery_s: float | None = None
    """Seconds from the fault's end until the consumer lag was back to its level before."""
    restarts: list[str] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""

    @property
    def held(self) -> bool:
        """Every invariant held, nothing lost or doubled, and ``up`` exited 0."""
        return (
            self.exit_code == 0
            and bool(self.invariants)
            and all(i["passed"] for i in self.invariants)
            and self.orders_lost == 0
            and self.orders_duplicated == 0
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "held": self.held}


# -- processes ---------------------------------------------------------------------------------
def _process(pid: int) -> tuple[int, list[bytes]] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if stat.rsplit(")", 1)[1].split()[0] == "Z":
        return None
    return int(stat.rsplit(")", 1)[1].split()[1]), argv


def descendants(root: int) -> dict[int, list[bytes]]:
    """Every live process below ``root``, with its argv."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := _process(int(entry.name))) is not None:
            table[int(entry.name)] = found
    out: dict[int, list[bytes]] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, argv) in table.items():
            if ppid == parent and pid not in out:
                out[pid] = argv
                frontier.append(pid)
    return out


def target_pid(up_pid: int, target: str) -> int | None:
    """The pid of ``interlock up``'s child ``target``: a service, ``broker`` or ``erp-db``
    (PostgreSQL's postmaster, below the ``runuser`` that starts it)."""
    for pid, argv in descendants(up_pid).items():
        if target == "broker" and b"kafka.Kafka" in argv:
            return pid
        if target == "erp-db" and argv and argv[0].endswith(b"postgres") and b"-D" in argv:
            return pid
        if b"interlock.cli" in argv and target.encode() in argv[:4]:
            return pid
    return None


# -- lag ---------------------------------------------------------------------------------------
def total_lag(text: str) -> float:
    """The sum of every group's lag in a lag exporter's /metrics text."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == LAG_METRIC
        for sample in family.samples
    )


def recovered_at(
    samples: list[tuple[float, float | None]], fault_start: float, fault_end: float
) -> float | None:
    """When the lag was back to its level before the fault, for two samples in a row.

    ``samples`` are (time, total lag or None when the exporter did not answer). The level is
    the median before ``fault_start``; "back" is at most twice it plus 100 records.
    """
    before = [lag for t, lag in samples if t < fault_start and lag is not None]
    level = statistics.median(before) if before else 0.0
    limit = 2 * level + 100
    streak: float | None = None
    for t, lag in samples:
        if t < fault_end:
            continue
        if lag is not None and lag <= limit:
            if streak is not None:
                return streak
            streak = t
        else:
            streak = None
    return None


class _LagSampler(threading.Thread):
    def __init__(self, url: Callable[[], str | None], clock: Callable[[], float]) -> None:
        super().__init__(name="chaos-lag", daemon=True)
        self.url = url
        self.clock = clock
        self.samples: list[tuple[float, float | None]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=2.0) as client:
            while not self.stop.wait(1.0):
                url = self.url()
                lag: float | None = None
                if url:
                    try:
                        lag = total_lag(client.get(url).text)
                    except httpx.HTTPError:
                        lag = None
                self.samples.append((self.clock(), lag))


# -- one case ----------------------------------------------------------------------------------
def run_case(
    planned: Planned,
    workdir: Path,
    rate: float,
    env: Mapping[str, str] | None = None,
    log: Callable[[str], None] = print,
) -> Outcome:
    """Run ``planned`` in ``workdir`` (made if missing) and return what happened."""
    case = planned.case
    workdir.mkdir(parents=True, exist_ok=True)
    outcome = Outcome(case.name, case.description, planned.at_s, case.fault_s, None)
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"KAFKA_BOOTSTRAP_SERVERS", "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS"}
    }
    base.update({"INTERLOCK_METRICS__PORT": "0", "INTERLOCK_WEBHOOKS__PORT": "0", "COLUMNS": "200"})
    base.update(env or {})
    cluster: KafkaCluster | None = None
    began = time.monotonic()
    try:
        if case.cluster_nodes:
            cluster = KafkaCluster(case.cluster_nodes, data_dir=workdir / "cluster").start()
            base["INTERLOCK_KAFKA__BOOTSTRAP_SERVERS"] = cluster.bootstrap_servers
            base["INTERLOCK_TOPICS__REPLICATION_FACTOR"] = str(case.cluster_nodes)
        argv = [
            sys.executable, "-m", "interlock.cli", "up",
            "--simulate", f"{rate:g}", "--for", f"{case.run_s:g}", "--check",
            "--seed", str(planned.seed), "--log-dir", str(workdir / ".interlock" / "logs"),
            *case.up_args,
        ]  # fmt: skip
        for spec in planned.outage_specs():
            argv += ["--fault", spec]
        _run_up(argv, base, workdir, planned, outcome, cluster, log)
    finally:
        if cluster is not None:
            cluster.close()
    outcome.seconds = round(time.monotonic() - began, 1)
    _read_verdict(workdir / ".interlock", outcome)
    return outcome


def _run_up(
    argv: list[str],
    env: dict[str, str],
    workdir: Path,
    planned: Planned,
    outcome: Outcome,
    cluster: KafkaCluster | None,
    log: Callable[[str], None],
) -> None:
    case = planned.case
    out_path = workdir / "up.log"
    with out_path.open("w") as out:
        proc = subprocess.Popen(
            argv, env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        ready = threading.Event()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                out.flush()
                if READY in line:
                    ready.set()
                if ("restart" in line and "killed by" in line) or "exited with" in line:
                    outcome.restarts.append(line.strip()[-160:])

        reader = threading.Thread(target=pump, name="chaos-up-output", daemon=True)
        reader.start()
        stack_file = workdir / ".interlock" / "stack.json"

        def lag_url() -> str | None:
            state = read_stack(stack_file) if stack_file.exists() else None
            return state.metrics.get("lag-exporter") if state is not None else None

        sampler = _LagSampler(lag_url, time.monotonic)
        try:
            if not ready.wait(180) or proc.poll() is not None:
                outcome.note = "interlock up did not become ready"
                return
            sampler.start()
            start = time.monotonic()
            fault_start = start + planned.at_s
            _sleep_until(fault_start, proc)
            log(f"{case.name}: fault at {planned.at_s:g} s: {case.description}")
            fault_end = _inject(planned, proc.pid, cluster, outcome)
            limit = case.run_s + 20 + 90 + max(60.0, case.run_s) + 240
            try:
                proc.wait(timeout=max(60.0, start + limit - time.monotonic()))
            except subprocess.TimeoutExpired:
                outcome.note = "interlock up did not finish in time: stopped"
                proc.terminate()
                proc.wait(60)
            if fault_end is not None:
                back = recovered_at(sampler.samples, fault_start, fault_end)
                outcome.recovery_s = None if back is None else round(back - fault_end, 1)
        finally:
            sampler.stop.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
            reader.join(10)
            outcome.exit_code = proc.returncode


def _sleep_until(moment: float, proc: subprocess.Popen[str]) -> None:
    while time.monotonic() < moment and proc.poll() is None:
        time.sleep(min(0.2, max(0.0, moment - time.monotonic())))


def _inject(
    planned: Planned, up_pid: int, cluster: KafkaCluster | None, outcome: Outcome
) -> float | None:
    """Do the fault; returns when it ended (monotonic), None if it could not be done."""
    case = planned.case
    if case.kind == "api":  # the simulator plays it on schedule
        return time.monotonic() + case.fault_s
    if case.kind == "cluster-kill":
        assert cluster is not None
        victim = cluster.brokers[1]
        victim.kill()
        return time.monotonic()
    pid = target_pid(up_pid, case.target)
    if pid is None:
        outcome.note = f"no {case.target} process found to fault"
        return None
    if case.kind == "kill":
        os.kill(pid, signal.SIGKILL)
        return time.monotonic()
    if case.kind == "restart":  # a fast shutdown; up's supervisor starts it again
        os.kill(pid, signal.SIGINT)
        return time.monotonic()
    os.kill(pid, signal.SIGSTOP)  # stall
    try:
        time.sleep(case.hold_s)  # holds a fault
    finally:
        os.kill(pid, signal.SIGCONT)
    return time.monotonic()


def _read_verdict(state_dir: Path, outcome: Outcome) -> None:
    check = state_dir / "check.json"
    if check.exists():
        outcome.invariants = json.loads(check.read_text())
        stray = next(
            (i for i in outcome.invariants if i["name"] == "no_unexpected_dead_letters"), None
        )
        outcome.unexpected_dead_letters = int(stray["actual"]) if stray else None
    elif not outcome.note:
        outcome.note = "no invariants were checked (see up.log)"
    complete = next((i for i in outcome.invariants if i["name"] == "orders_complete"), None)
    if complete is not None:
        # the quotes a person holds or refused on the exception desk are excused there
        outcome.orders_expected = int(complete["expected"])
        outcome.orders_lost = int(complete["expected"]) - int(complete["actual"])
    truth_file = state_dir / "simulation.json"
    if truth_file.exists():
        _truth, recorded = load_run(truth_file)
        per_quote: dict[str, int] = {}
        for order in recorded.erp_orders:
            if order.quote_id:
                per_quote[order.quote_id] = per_quote.get(order.quote_id, 0) + 1
        # counted from what the fake ERP recorded: every order past the first of a quote
        outcome.orders_duplicated = sum(n - 1 for n in per_quote.values() if n > 1)
