"""Every PromQL expression of the dashboards and alert rules returns data from a real Prometheus.

A real Prometheus server (Debian's ``prometheus``; 127.0.0.1, free port, temp config and data
dir, 1 s scrapes) loads the repository's alert and recording rules and scrapes:

- every ``/metrics`` endpoint that ``interlock up`` starts (parsed from what it prints, so the
  targets grow as ``up`` runs more services; a "<name> metrics" row becomes job
  ``interlock-<name>``, the supervisor's own row job ``interlock-up``);
- the lag exporter (``interlock lag-exporter``, a subprocess) watching ``up``'s broker, where a
  consumer group with lag is parked;
- a load generator in this test that serves an ``Instruments`` registry and drives every
  application metric with realistic values (so that the metrics pipeline is proven end to end
  even for metrics whose services are not in ``up`` yet).

Then each expression is evaluated through ``/api/v1/query``. Dashboard queries (Grafana
variables replaced as by "All" and a 30 s rate interval) and recording rules must return a
non-empty result. Alert expressions must evaluate without error, and since an alert is
legitimately empty while nothing is wrong, the series it compares must be non-empty: each
operand of a top-level ``and`` without its comparison to a number, and the argument of
``absent()`` (``tests.ops.promql.inner_series``).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from interlock.broker import free_port
from interlock.instruments import Instruments
from interlock.metrics import new_registry, serve_metrics
from tests.conftest import consume_n
from tests.e2e.stack import start_up
from tests.ops.promql import RULES, dashboard_exprs, inner_series, rules

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

DEADLINE_S = 45.0


@dataclass
class Up:
    proc: subprocess.Popen[str]
    targets: dict[str, str]  # job -> host:port
    output: str


def _start_up(tmp_path: Path, bootstrap: str) -> Up:
    proc, output = start_up(
        tmp_path,
        "--for",
        "110",
        env={
            "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "INTERLOCK_LAG_EXPORTER__INTERVAL_S": "1",
        },
    )
    targets = {}
    for label, hostport in re.findall(
        r"([a-z][\w -]*?)\s*\W+\s*http://(127\.0\.0\.1:\d+)/metrics", output
    ):
        name = "-".join(label.strip().removesuffix("metrics").split())
        targets[f"interlock-{name}" if name else "interlock-up"] = hostport
    assert targets, output
    return Up(proc, targets, output)


def _logs(tmp_path: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-15:])
        for p in sorted((tmp_path / "logs").glob("*.log"))
    )


def _stop(proc: subprocess.Popen[str] | subprocess.Popen[bytes], timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


class Load:
    """Drives every application metric of ``Instruments`` as a busy service would."""

    def __init__(self) -> None:
        self.registry = new_registry()
        self.m = Instruments(self.registry, "load")
        self.stop = threading.Event()
        self.rng = random.Random(8)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _tick(self) -> None:
        m, rng = self.m, self.rng
        for topic in ("canonical.quote.v1", "canonical.order.v1"):
            m.events_consumed.labels("load", topic, "ok").inc(rng.randint(50, 100))
            m.events_consumed.labels("load", topic, "duplicate").inc(rng.randint(0, 3))
            m.events_consumed.labels("load", topic, "dead_lettered").inc(rng.randint(0, 2))
            m.events_produced.labels("load", topic).inc(rng.randint(50, 100))
            m.events_produce_failed.labels("load", topic).inc(rng.randint(0, 1))
            m.retries.labels("load", topic, "1").inc(rng.randint(1, 3))
            m.dead_letters.labels("load", f"dlq.{topic}", "VALIDATION_FAILED").inc(
                rng.randint(1, 2)
            )
        for stage in ("map", "merge", "quote_to_order"):
            m.processing_seconds.labels("load", stage).observe(rng.lognormvariate(-7, 1))
        for flow in ("quote_to_order", "status_to_crm"):
            for _ in range(20):
                m.handoff_latency_seconds.labels(flow).observe(rng.lognormvariate(-1.5, 0.9))
        m.duplicates_suppressed.labels("load", "quote_to_order").inc(rng.randint(1, 3))
        m.ownership_violations.labels("account", "credit_limit", "crm", "stripped").inc()
        m.parked_joins.labels("quote_awaiting_account").set(rng.randint(0, 40))
        m.commands_emitted.labels("commands.erp.create_order").inc(rng.randint(5, 10))
        m.echoes_suppressed.labels("account").inc(rng.randint(0, 2))
        for status, n in (("202", 40), ("401", 2), ("503", 1)):
            m.webhook_requests.labels("hubspot", status).inc(rng.randint(1, n))
        for target in ("erp", "crm"):
            m.sink_calls.labels(target, "ok").inc(rng.randint(5, 10))
            m.sink_calls.labels(target, "unavailable").inc(rng.randint(0, 2))
            m.sink_call_seconds.labels(target).observe(rng.lognormvariate(-3, 0.7))
        m.circuit_breaker_state.labels("erp").set(rng.choice([0, 0, 1, 2]))
        m.circuit_breaker_state.labels("crm").set(0)
        m.unknown_tables.labels("public.audit_log").inc(rng.randint(0, 1))
        m.reconciliation_drift.labels("RECON_ORDER_MISSING").set(rng.randint(0, 3))
        m.reconciliation_findings.labels("RECON_ORDER_MISSING", "opened").inc(rng.randint(0, 2))
        m.review_cases_open.labels("finance", "high").set(rng.randint(1, 5))
        m.review_oldest_case_age.labels("finance").set(rng.uniform(60, 7200))
        m.review_cases_opened.labels("policy", "finance").inc(rng.randint(0, 2))
        m.review_sla_breaches.labels("finance", "policy").inc(rng.randint(0, 1))
        m.review_decisions.labels("approve", "applied").inc(rng.randint(0, 2))

    def _run(self) -> None:
        while not self.stop.wait(0.25):
            self._tick()

    def __enter__(self) -> Load:
        self._tick()
        self.endpoint = serve_metrics(self.registry, "127.0.0.1", 0)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.endpoint.stop()


def _park_a_lagging_group(bootstrap: str) -> Consumer:
    """A group that consumed and committed part of a topic, then stopped committing."""
    topic, group = f"e2e.lag.{uuid.uuid4().hex[:8]}", f"interlock-e2e-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for i in range(300):
        producer.produce(topic, key=b"%d" % i, value=b"x" * 100)
    producer.flush(30)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
         "enable.auto.commit": False, "session.timeout.ms": 6000}
    )  # fmt: skip
    consumer.subscribe([topic])
    assert len(consume_n(consumer, 100, timeout=30)) == 100
    consumer.commit(asynchronous=False)
    return consumer


def _prometheus_config(path: Path, targets: dict[str, str]) -> None:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [hostport]}]}
            for job, hostport in sorted(targets.items())
        ],
    }
    path.write_text(yaml.safe_dump(config))


def _query(base: str, expr: str) -> tuple[str, list[object]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read())
    if body["status"] != "success":
        return f"error: {body.get('error')}", []
    return "success", body["data"]["result"]


def _wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "prometheus exited"
        try:
            with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("prometheus did not become ready")


def test_every_dashboard_and_alert_expression_returns_data(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    exe = shutil.which("prometheus")
    assert exe, "prometheus is missing: run `make system-tools` (Debian package prometheus)"
    up = _start_up(tmp_path, kafka_bootstrap)
    procs: list[subprocess.Popen[bytes]] = []
    consumer: Consumer | None = None
    try:
        consumer = _park_a_lagging_group(kafka_bootstrap)
        targets = dict(up.targets)
        if "interlock-lag-exporter" not in targets:  # until `up` runs one itself
            lag_port = free_port()
            env = {**os.environ, "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap}
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "interlock.cli", "lag-exporter", "--port", str(lag_port),
                 "--interval", "1"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
            targets["interlock-lag-exporter"] = f"127.0.0.1:{lag_port}"
        with Load() as load:
            targets["interlock-load"] = f"127.0.0.1:{load.endpoint.port}"
            config = tmp_path / "prometheus.yml"
            _prometheus_config(config, targets)
            port = free_port()
            procs.append(subprocess.Popen(
                [exe, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
            base = f"http://127.0.0.1:{port}"
            _wait_ready(base, procs[-1])

            must_have_data = [(where, expr) for where, expr in dashboard_exprs()]
            must_succeed = []
            for rule in rules():
                name = rule.get("alert") or rule["record"]
                if "record" in rule:
                    must_have_data.append((f"record {name}", rule["expr"]))
                else:
                    must_succeed.append((f"alert {name}", rule["expr"]))
                    must_have_data += [
                        (f"alert {name} (inner)", e) for e in inner_series(rule["expr"])
                    ]

            missing: dict[str, str] = {}
            deadline = time.monotonic() + DEADLINE_S
            while time.monotonic() < deadline:
                missing = {}
                for where, expr in must_have_data:
                    status, result = _query(base, expr)
                    if status != "success" or not result:
                        missing[where] = f"{expr} -> {status}, {len(result)} series"
                for where, expr in must_succeed:
                    status, _ = _query(base, expr)
                    if status != "success":
                        missing[where] = f"{expr} -> {status}"
                if not missing:
                    break
                time.sleep(1)
            assert not missing, "\n".join(f"{k}: {v}" for k, v in missing.items())
            # Every service `up` started is still running and scraped successfully.
            assert up.proc.poll() is None, f"interlock up exited\n{up.output}\n{_logs(tmp_path)}"
            status, result = _query(base, "up")
            assert {r["metric"]["job"] for r in result} == set(targets)  # type: ignore[index]
            status, result = _query(base, 'up{job=~"interlock-.*"} == 0')
            assert status == "success"
            assert result == [], f"targets down: {result}\n{up.output}\n{_logs(tmp_path)}"
            # The lag of the parked group is what it should be (200 of 300 unconsumed).
            status, result = _query(
                base, 'sum(interlock_consumer_lag_messages{group=~"interlock-e2e-.*"})'
            )
            assert status == "success"
            assert float(result[0]["value"][1]) == 200  # type: ignore[index]
    finally:
        for proc in reversed(procs):
            _stop(proc)
        if consumer is not None:
            consumer.close()
        _stop(up.proc)
