"""Every Prometheus metric Interlock exports, defined once, on a registry passed in.

Names follow Prometheus conventions: prefix ``interlock_``, base units (seconds), counters end
in ``_total``. A service creates ``Instruments(registry)`` once and passes it to what it runs;
the dashboards and alert rules in ``ops/`` query exactly these names.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["CIRCUIT_STATES", "LATENCY_BUCKETS", "Instruments"]

#: Seconds; fine below one second, where the handoff SLO lives, coarse above.
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip

#: Values of ``interlock_circuit_breaker_state``.
CIRCUIT_STATES = {"closed": 0, "half_open": 1, "open": 2}


class Instruments:
    """The metrics of one service process."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.registry = registry
        self.service = service
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.events_consumed = Counter(
            "interlock_events_consumed_total",
            "Records consumed, by topic and outcome "
            "(ok, dead_lettered, retried, skipped, duplicate).",
            ["service", "topic", "outcome"],
            registry=registry,
        )
        self.events_produced = Counter(
            "interlock_events_produced_total",
            "Records produced (delivery confirmed), by topic.",
            ["service", "topic"],
            registry=registry,
        )
        self.events_produce_failed = Counter(
            "interlock_events_produce_failed_total",
            "Records whose delivery failed (the produce outcome besides ok), by topic.",
            ["service", "topic"],
            registry=registry,
        )
        self.changelog_writes = Counter(
            "interlock_changelog_writes_total",
            "Table writes that made a changelog record, by changelog topic (before the records "
            "of one commit interval are coalesced to the latest per key).",
            ["topic"],
            registry=registry,
        )
        self.changelog_records_emitted = Counter(
            "interlock_changelog_records_emitted_total",
            "Changelog records queued to the broker, by changelog topic: the latest per key of "
            "each commit interval (every dedup mark, never coalesced).",
            ["topic"],
            registry=registry,
        )
        self.processing_seconds = Histogram(
            "interlock_processing_seconds",
            "Time to handle one record (or one batch, divided per record) in a stage.",
            ["service", "stage"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.handoff_latency_seconds = Histogram(
            "interlock_handoff_latency_seconds",
            "Business handoff latency from event times: quote accepted in the CRM to ERP order "
            "created (flow=quote_to_order); ERP status change to CRM write-back "
            "(flow=status_to_crm).",
            ["flow"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.dead_letters = Counter(
            "interlock_dead_letters_total",
            "Records sent to a dead-letter topic, by dead-letter topic and reason code.",
            ["service", "topic", "reason"],
            registry=registry,
        )
        self.retries = Counter(
            "interlock_retries_total",
            "Records sent to a retry topic, by original topic and attempt.",
            ["service", "topic", "attempt"],
            registry=registry,
        )
        self.duplicates_suppressed = Counter(
            "interlock_duplicates_suppressed_total",
            "Events recognised as duplicates and not acted on again, by stage.",
            ["service", "stage"],
            registry=registry,
        )
        self.ownership_violations = Counter(
            "interlock_ownership_violations_total",
            "Changes to a field by a system that does not own it, by entity, field and action.",
            ["entity", "field", "system", "action"],
            registry=registry,
        )
        self.parked_joins = Gauge(
            "interlock_parked_joins",
            "Events parked waiting for what they join with (e.g. a quote waiting for its account).",
            ["kind"],
            registry=registry,
        )
        self.parked_quotes = Gauge(
            "interlock_parked_quotes",
            "Quotes parked by what they wait for (account: not known yet; link: known, not "
            "linked to an ERP customer), set at each scan of the parked quotes.",
            ["waiting_for"],
            registry=registry,
        )
        self.parked_oldest_age = Gauge(
            "interlock_parked_oldest_age_seconds",
            "How long the longest-waiting parked quote has waited, by what it waits for.",
            ["waiting_for"],
            registry=registry,
        )
        self.join_grace = Gauge(
            "interlock_join_grace_seconds",
            "How long a quote may stay parked before it is dead-lettered (the setting).",
            registry=registry,
        )
        self.commands_emitted = Counter(
            "interlock_commands_emitted_total",
            "Commands emitted to the ERP and CRM, by command topic.",
            ["command"],
            registry=registry,
        )
        self.reconciliation_drift = Gauge(
            "interlock_reconciliation_drift",
            "Open reconciliation findings (CRM and ERP disagree), by kind (reason code), in the "
            "partitions this worker holds.",
            ["kind"],
            registry=registry,
        )
        self.reconciliation_findings = Counter(
            "interlock_reconciliation_findings_total",
            "Reconciliation findings recorded on audit.reconciliation, by kind and state "
            "(opened, resolved).",
            ["kind", "state"],
            registry=registry,
        )
        self.echoes_suppressed = Counter(
            "interlock_echoes_suppressed_total",
            "CRM or ERP changes recognised as the echo of Interlock's own write and dropped.",
            ["entity"],
            registry=registry,
        )
        self.webhook_requests = Counter(
            "interlock_webhook_requests_total",
            "Webhook requests answered, by source and HTTP status.",
            ["source", "status"],
            registry=registry,
        )
        self.sink_calls = Counter(
            "interlock_sink_calls_total",
            "Calls to a target API, by target and outcome (ok, retry, rejected, unavailable).",
            ["target", "outcome"],
            registry=registry,
        )
        self.sink_call_seconds = Histogram(
            "interlock_sink_call_seconds",
            "Duration of calls to a target API.",
            ["target"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.circuit_breaker_state = Gauge(
            "interlock_circuit_breaker_state",
            "Circuit breaker per target: 0 closed, 1 half-open, 2 open.",
            ["target"],
            registry=registry,
        )
        self.assigned_partitions = Gauge(
            "interlock_assigned_partitions",
            "Partitions this process's consumer group member holds (0 until the group is joined).",
            ["group"],
            registry=registry,
        )
        self.review_cases_open = Gauge(
            "interlock_review_cases_open",
            "Cases waiting for a person (open or escalated), by owning team and severity, in the "
            "partitions this worker holds.",
            ["team", "severity"],
            registry=registry,
        )
        self.review_oldest_case_age = Gauge(
            "interlock_review_oldest_case_age_seconds",
            "Age of the oldest case waiting for a person, by owning team.",
            ["team"],
            registry=registry,
        )
        self.review_cases_opened = Counter(
            "interlock_review_cases_opened_total",
            "Cases opened on review.cases, by kind and owning team.",
            ["kind", "team"],
            registry=registry,
        )
        self.review_sla_breaches = Counter(
            "interlock_review_sla_breaches_total",
            "Cases still undecided at their SLA deadline (each one escalated), by team and kind.",
            ["team", "kind"],
            registry=registry,
        )
        self.review_decisions = Counter(
            "interlock_review_decisions_total",
            "Decisions read from review.decisions, by action and result (applied, refused, "
            "duplicate, unknown_case).",
            ["action", "result"],
            registry=registry,
        )
        self.unknown_tables = Counter(
            "interlock_cdc_unknown_tables_total",
            "CDC events for tables no mapping covers (skipped, or dead-lettered in strict mode).",
            ["table"],
            registry=registry,
        )

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, kept: ``labels()`` validates and locks at every call,
        which on a per-record path costs more than the increment itself."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found
