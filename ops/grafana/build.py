"""Generates Interlock's Grafana dashboards as JSON, so panels stay consistent and reviewable.

Run ``python -m ops.grafana.build`` after changing this file: it rewrites
``ops/grafana/dashboards/*.json``, which Grafana loads through ``provisioning/``; a test checks
that the committed JSON equals what this module generates. Every query uses the metric names of
``interlock/instruments.py`` and of the lag exporter (``ops/lag``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ops.grafana.panels import (
    DASHBOARD_DIR,
    HANDOFF_SLO_SECONDS,
    RATE,
    Panel,
    dashboard,
    variable,
)

__all__ = ["dashboards", "render", "write"]


CIRCUIT = [
    {
        "type": "value",
        "options": {
            "0": {"text": "closed", "color": "green"},
            "1": {"text": "half-open", "color": "orange"},
            "2": {"text": "open", "color": "red"},
        },
    }
]
UP = [{"type": "value", "options": {"0": {"text": "down", "color": "red"}, "1": {"text": "up"}}}]


def _up(title: str, expr: str) -> Panel:
    """A full-width row of up/down tiles, one per scraped service."""
    return Panel(
        title,
        [(expr, "{{job}} {{instance}}")],
        kind="stat",
        width=24,
        height=4,
        mappings=UP,
        thresholds=[(0, "red"), (1, "green")],
    )


def _circuits(title: str, expr: str, width: int = 12) -> Panel:
    """A tile per sink target: its circuit breaker closed, half-open (orange) or open (red)."""
    return Panel(
        title,
        [(expr, "{{target}}")],
        kind="stat",
        width=width,
        mappings=CIRCUIT,
        thresholds=[(1, "orange"), (2, "red")],
    )


def _handoff_p99(selector: str) -> str:
    return (
        "histogram_quantile(0.99, sum by (le, flow) "
        f"(rate(interlock_handoff_latency_seconds_bucket{selector}{RATE})))"
    )


def sre_overview() -> dict[str, Any]:
    """Is Interlock healthy? Throughput, lag, handoff SLO, failures, sinks, services."""
    panels = [
        _up("Services up", 'up{job=~"interlock-.*"}'),
        Panel(
            "Throughput consumed (records/s)",
            [(f"sum by (topic) (rate(interlock_events_consumed_total{RATE}))", "{{topic}}")],
            unit="reqps",
        ),
        Panel(
            "Throughput produced (records/s)",
            [(f"sum by (topic) (rate(interlock_events_produced_total{RATE}))", "{{topic}}")],
            unit="reqps",
        ),
        Panel(
            "Consumer lag (messages)",
            [("sum by (group, topic) (interlock_consumer_lag_messages)", "{{group}} {{topic}}")],
        ),
        Panel(
            "Consumer time lag (seconds)",
            [("max by (group, topic) (interlock_consumer_lag_seconds)", "{{group}} {{topic}}")],
            unit="s",
            thresholds=[(30, "red")],
        ),
        Panel(
            "Consumer group status (OK, WARN, STALL, STOP)",
            [("interlock_consumer_group_status == 1", "{{group}}: {{status}}")],
            kind="table",
            width=8,
        ),
        Panel(
            "Handoff latency p99 vs SLO (1 s)",
            [(_handoff_p99(""), "p99 {{flow}}")],
            unit="s",
            width=8,
            thresholds=[(HANDOFF_SLO_SECONDS, "red")],
            description="From event times; the SLO is p99 < 1 s per flow.",
        ),
        Panel(
            "Handoffs within 1 s (SLO 99%)",
            [
                (
                    'sum by (flow) (rate(interlock_handoff_latency_seconds_bucket{le="1.0"}'
                    f"{RATE})) / sum by (flow) "
                    f"(rate(interlock_handoff_latency_seconds_count{RATE}))",
                    "{{flow}}",
                )
            ],
            unit="percentunit",
            width=8,
        ),
        Panel(
            "Dead letters by reason (records/s)",
            [
                (
                    f"sum by (reason, topic) (rate(interlock_dead_letters_total{RATE}))",
                    "{{reason}} → {{topic}}",
                )
            ],
            unit="reqps",
        ),
        Panel(
            "Webhook errors (requests/s)",
            [
                (
                    "sum by (source, status) "
                    f'(rate(interlock_webhook_requests_total{{status=~"[45].."}}{RATE}))',
                    "{{source}} {{status}}",
                )
            ],
            unit="reqps",
        ),
        Panel(
            "Sink calls by outcome (calls/s)",
            [
                (
                    f"sum by (target, outcome) (rate(interlock_sink_calls_total{RATE}))",
                    "{{target}} {{outcome}}",
                )
            ],
            unit="reqps",
        ),
        _circuits("Sink circuit breakers", "max by (target) (interlock_circuit_breaker_state)"),
    ]
    return dashboard("interlock-sre", "Interlock / SRE overview", panels, [])


def flow_view() -> dict[str, Any]:
    """One business flow: handoff latency against its SLO, budget burn, what delays it."""
    flow = 'flow=~"$flow"'
    panels = [
        Panel(
            "Handoff latency (p50, p90, p99)",
            [
                (
                    f"histogram_quantile({q}, sum by (le, flow) (rate("
                    f"interlock_handoff_latency_seconds_bucket{{{flow}}}{RATE})))",
                    f"p{int(q * 100)} {{{{flow}}}}",
                )
                for q in (0.5, 0.9, 0.99)
            ],
            unit="s",
            thresholds=[(HANDOFF_SLO_SECONDS, "red")],
        ),
        Panel(
            "Handoffs (per second)",
            [
                (
                    "sum by (flow) "
                    f"(rate(interlock_handoff_latency_seconds_count{{{flow}}}{RATE}))",
                    "{{flow}}",
                )
            ],
            unit="reqps",
        ),
        Panel(
            "Slow handoffs (> 1 s), share over 5m and 1h",
            [
                (f"interlock:handoff_slow:ratio_rate5m{{{flow}}}", "5m {{flow}}"),
                (f"interlock:handoff_slow:ratio_rate1h{{{flow}}}", "1h {{flow}}"),
            ],
            unit="percentunit",
            thresholds=[(0.01, "red")],
        ),
        Panel(
            "Error budget burn rate (1h; 1 = on budget, alert at 14.4)",
            [(f"interlock:handoff_slow:ratio_rate1h{{{flow}}} / 0.01", "{{flow}}")],
            thresholds=[(6, "orange"), (14.4, "red")],
        ),
        Panel("Parked joins", [("sum by (kind) (interlock_parked_joins)", "{{kind}}")], width=8),
        Panel(
            "Commands emitted (per second)",
            [(f"sum by (command) (rate(interlock_commands_emitted_total{RATE}))", "{{command}}")],
            unit="reqps",
            width=8,
        ),
        Panel(
            "Duplicates and echoes suppressed (per second)",
            [
                (
                    f"sum by (stage) (rate(interlock_duplicates_suppressed_total{RATE}))",
                    "dup {{stage}}",
                ),
                (
                    f"sum by (entity) (rate(interlock_echoes_suppressed_total{RATE}))",
                    "echo {{entity}}",
                ),
            ],
            unit="reqps",
            width=8,
        ),
        Panel(
            "Ownership violations by entity and field (per second)",
            [
                (
                    "sum by (entity, field, action) "
                    f"(rate(interlock_ownership_violations_total{RATE}))",
                    "{{entity}}.{{field}} {{action}}",
                )
            ],
            unit="reqps",
        ),
        Panel(
            "Sink call latency p99",
            [
                (
                    "histogram_quantile(0.99, sum by (le, target) "
                    f"(rate(interlock_sink_call_seconds_bucket{RATE})))",
                    "{{target}}",
                )
            ],
            unit="s",
        ),
        Panel(
            "Lag of the groups on the path (messages)",
            [("sum by (group) (interlock_consumer_lag_messages)", "{{group}}")],
        ),
        Panel(
            "Dead letters by reason (records/s)",
            [(f"sum by (reason) (rate(interlock_dead_letters_total{RATE}))", "{{reason}}")],
            unit="reqps",
        ),
        Panel(
            "Reconciliation: open drift by kind",
            [("sum by (kind) (interlock_reconciliation_drift)", "{{kind}}")],
            description="Open findings on audit.reconciliation: `interlock reconcile report`.",
            thresholds=[(1, "orange")],
        ),
        Panel(
            "Reconciliation findings opened and resolved (per second)",
            [
                (
                    f"sum by (kind, state) (rate(interlock_reconciliation_findings_total{RATE}))",
                    "{{kind}} {{state}}",
                )
            ],
            unit="reqps",
        ),
        *_exception_desk(),
    ]
    variables = [variable("flow", "Flow", values="quote_to_order,status_to_crm")]
    return dashboard("interlock-flow", "Interlock / Flow", panels, variables)


def _exception_desk() -> list[Panel]:
    """The row of the exception desk: what waits for people, for how long, what they decide."""
    return [
        Panel(
            "Exception desk: open cases by team and severity",
            [
                (
                    "sum by (team, severity) (interlock_review_cases_open)",
                    "{{team}} {{severity}}",
                )
            ],
            description="Cases waiting for a person: `interlock review list` or the console.",
            width=6,
        ),
        Panel(
            "Exception desk: oldest open case",
            [("max by (team) (interlock_review_oldest_case_age_seconds)", "{{team}}")],
            unit="s",
            width=6,
        ),
        Panel(
            "Exception desk: SLA breaches (escalations per second)",
            [
                (
                    f"sum by (team, kind) (rate(interlock_review_sla_breaches_total{RATE}))",
                    "{{team}} {{kind}}",
                )
            ],
            unit="reqps",
            thresholds=[(0.0001, "red")],
            width=6,
        ),
        Panel(
            "Exception desk: decisions by action (per second)",
            [
                (
                    f"sum by (action, result) (rate(interlock_review_decisions_total{RATE}))",
                    "{{action}} {{result}}",
                ),
                (
                    f"sum by (kind) (rate(interlock_review_cases_opened_total{RATE}))",
                    "opened {{kind}}",
                ),
            ],
            unit="reqps",
            width=6,
        ),
    ]


def service_view() -> dict[str, Any]:
    """One service (Prometheus job): its work, its failures, its process."""
    job = 'job=~"$job"'
    panels = [
        _up("Up", f"up{{{job}}}"),
        Panel(
            "Consumed by topic and outcome (records/s)",
            [
                (
                    "sum by (topic, outcome) "
                    f"(rate(interlock_events_consumed_total{{{job}}}{RATE}))",
                    "{{topic}} {{outcome}}",
                )
            ],
            unit="reqps",
        ),
        Panel(
            "Produced by topic (records/s)",
            [
                (
                    f"sum by (topic) (rate(interlock_events_produced_total{{{job}}}{RATE}))",
                    "{{topic}}",
                ),
                (
                    f"sum by (topic) (rate(interlock_events_produce_failed_total{{{job}}}{RATE}))",
                    "failed {{topic}}",
                ),
            ],
            unit="reqps",
        ),
        Panel(
            "Processing time per record p99 by stage",
            [
                (
                    "histogram_quantile(0.99, sum by (le, stage) "
                    f"(rate(interlock_processing_seconds_bucket{{{job}}}{RATE})))",
                    "{{stage}}",
                )
            ],
            unit="s",
        ),
        Panel(
            "Retries and dead letters (records/s)",
            [
                (
                    f"sum by (topic) (rate(interlock_retries_total{{{job}}}{RATE}))",
                    "retry {{topic}}",
                ),
                (
                    f"sum by (topic, reason) (rate(interlock_dead_letters_total{{{job}}}{RATE}))",
                    "dlq {{topic}} {{reason}}",
                ),
            ],
            unit="reqps",
        ),
        Panel(
            "Webhook requests by source and status",
            [
                (
                    "sum by (source, status) "
                    f"(rate(interlock_webhook_requests_total{{{job}}}{RATE}))",
                    "{{source}} {{status}}",
                )
            ],
            unit="reqps",
            width=8,
        ),
        Panel(
            "CDC events of unmapped tables",
            [
                (
                    f"sum by (table) (rate(interlock_cdc_unknown_tables_total{{{job}}}{RATE}))",
                    "{{table}}",
                )
            ],
            unit="reqps",
            width=8,
        ),
        _circuits(
            "Circuit breakers",
            f"max by (target) (interlock_circuit_breaker_state{{{job}}})",
            width=8,
        ),
        Panel(
            "CPU (cores)", [(f"rate(process_cpu_seconds_total{{{job}}}{RATE})", "{{job}}")], width=8
        ),
        Panel(
            "Resident memory",
            [(f"process_resident_memory_bytes{{{job}}}", "{{job}}")],
            unit="bytes",
            width=8,
        ),
        Panel(
            "Lag exporter sampling time p99 and errors",
            [
                (
                    "histogram_quantile(0.99, sum by (le) (rate("
                    f"interlock_lag_exporter_scrape_duration_seconds_bucket{{{job}}}{RATE})))",
                    "p99",
                ),
                (
                    f"sum(rate(interlock_lag_exporter_scrape_errors_total{{{job}}}{RATE}))",
                    "errors/s",
                ),
            ],
            width=8,
        ),
    ]
    variables = [variable("job", "Service", query='label_values(up{job=~"interlock-.*"}, job)')]
    return dashboard("interlock-service", "Interlock / Service", panels, variables)


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard, by file name."""
    return {
        "interlock-sre-overview.json": sre_overview(),
        "interlock-flow.json": flow_view(),
        "interlock-service.json": service_view(),
    }


def render(dashboard: dict[str, Any]) -> str:
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(directory: Path = DASHBOARD_DIR) -> list[Path]:
    """Write every dashboard's JSON into ``directory``; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, board in dashboards().items():
        path = directory / name
        path.write_text(render(board), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write():
        sys.stdout.write(f"wrote {written}\n")
