"""Apply the topic catalog to a broker: create what is missing, report drift, never delete."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from contracts.topics import TopicCatalog, TopicSpec
from interlock.kafka import list_topics

__all__ = ["Drift", "TopicReport", "TopicStatus", "apply_catalog", "inspect_catalog"]

TopicStatus = Literal["created", "unchanged", "drift", "missing"]


@dataclass(frozen=True)
class Drift:
    """One difference between the catalog and the broker."""

    topic: str
    setting: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.setting} is {self.actual}, catalog says {self.expected}"


@dataclass
class TopicReport:
    """What ``apply`` or ``inspect`` found, topic by topic."""

    status: dict[str, TopicStatus] = field(default_factory=dict)
    drift: list[Drift] = field(default_factory=list)

    def names(self, status: TopicStatus) -> list[str]:
        return [name for name, s in self.status.items() if s == status]

    @property
    def ok(self) -> bool:
        return not self.drift and not self.names("missing")


def _expected(spec: TopicSpec, partitions: int, retention_ms: int) -> dict[str, str]:
    return {"partitions": str(partitions), **spec.config(retention_ms)}


def inspect_catalog(
    admin: AdminClient,
    catalog: TopicCatalog,
    default_partitions: int,
    default_retention_ms: int,
    timeout: float = 15.0,
) -> TopicReport:
    """Compare the catalog with the broker without changing anything."""
    report = TopicReport()
    metadata = list_topics(admin, timeout)  # KafkaAccessError at once if access is refused
    existing = {name: len(t.partitions) for name, t in metadata.topics.items()}
    present = [t for t in catalog.topics if t.name in existing]
    configs: dict[str, dict[str, str]] = {}
    if present:
        resources = [ConfigResource(ResourceType.TOPIC, t.name) for t in present]
        for resource, future in admin.describe_configs(resources).items():
            entries = future.result(timeout=timeout)
            configs[resource.name] = {k: str(v.value) for k, v in entries.items()}
    for spec in catalog.topics:
        if spec.name not in existing:
            report.status[spec.name] = "missing"
            continue
        expected = _expected(
            spec, catalog.partitions_of(spec, default_partitions), default_retention_ms
        )
        actual = {"partitions": str(existing[spec.name])}
        described = configs.get(spec.name, {})
        # A broker that describes only explicit configs omits defaults: delete is Kafka's default.
        actual["cleanup.policy"] = described.get("cleanup.policy", "delete")
        if "retention.ms" in described:
            actual["retention.ms"] = described["retention.ms"]
        drifted = False
        for setting, value in expected.items():
            if setting in actual and actual[setting] != value:
                report.drift.append(Drift(spec.name, setting, value, actual[setting]))
                drifted = True
        report.status[spec.name] = "drift" if drifted else "unchanged"
    return report


def apply_catalog(
    admin: AdminClient,
    catalog: TopicCatalog,
    default_partitions: int,
    default_retention_ms: int,
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> TopicReport:
    """Create missing topics with their full config; report (never fix) drift."""
    report = inspect_catalog(admin, catalog, default_partitions, default_retention_ms, timeout)
    missing = [catalog.get(name) for name in report.names("missing")]
    if not missing:
        return report
    new_topics = [
        NewTopic(
            spec.name,
            num_partitions=catalog.partitions_of(spec, default_partitions),
            replication_factor=replication_factor,
            config=spec.config(default_retention_ms),
        )
        for spec in missing
    ]
    for name, future in admin.create_topics(new_topics, operation_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
        except Exception as exc:
            # Another process may have created it meanwhile; that is not an error.
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
        report.status[name] = "created"
    return report
