"""The topic catalog: data in ``topics.yaml``, validated, dead-letter and retry topics derived."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError

from contracts.errors import ConfigError
from contracts.yamlfile import read_yaml

__all__ = [
    "CATALOG_PATH",
    "CLOCK_SUFFIX",
    "DLQ_PREFIX",
    "TopicCatalog",
    "TopicSpec",
    "dead_letter_spec",
    "dlq_topic",
    "load_catalog",
    "retry_topic",
    "spec_for_name",
]

CATALOG_PATH = Path(__file__).with_name("topics.yaml")
CLOCK_SUFFIX = "-ticks"
"""Ends the worker's clock topic (``<prefix><app id>-ticks``, not in the catalog): a tick a second
per partition, so a record is nearly always in flight on it. It carries no work, and lag
readers leave it out."""


DLQ_PREFIX = "dlq."


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of ``topic``."""
    return f"{DLQ_PREFIX}{topic}"


def retry_topic(topic: str, attempt: int) -> str:
    """The retry topic for the ``attempt``-th retry (1-based) of ``topic``."""
    return f"retry.{topic}.{attempt}"


class TopicSpec(BaseModel):
    """One topic with its full configuration."""

    model_config = {"extra": "forbid", "frozen": True}

    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")
    partitions: int | None = Field(default=None, ge=1)
    cleanup_policy: Literal["delete", "compact"] = "delete"
    retention_ms: int | None = Field(default=None, ge=-1)
    key: str = ""
    contract: str | None = None
    dead_letter: bool = True
    retry_tiers: int = Field(default=0, ge=0, le=10)
    co_partitioned: bool = False
    derived_from: str | None = None

    def config(self, default_retention_ms: int) -> dict[str, str]:
        """Topic configs to set explicitly at creation."""
        retention = self.retention_ms if self.retention_ms is not None else default_retention_ms
        return {"cleanup.policy": self.cleanup_policy, "retention.ms": str(retention)}


class _CatalogFile(BaseModel):
    model_config = {"extra": "forbid"}

    defaults: dict[str, object] = Field(default_factory=dict)
    topics: list[dict[str, object]]


class TopicCatalog(BaseModel):
    """Every topic: declared ones plus their ``dlq.`` and ``retry.`` companions."""

    topics: list[TopicSpec]

    def names(self) -> list[str]:
        return [t.name for t in self.topics]

    def get(self, name: str) -> TopicSpec:
        for topic in self.topics:
            if topic.name == name:
                return topic
        raise KeyError(name)

    def partitions_of(self, topic: TopicSpec, default: int) -> int:
        return topic.partitions if topic.partitions is not None else default


def _expand(spec: TopicSpec) -> list[TopicSpec]:
    out = [spec]
    for n in range(1, spec.retry_tiers + 1):
        out.append(
            TopicSpec(
                name=retry_topic(spec.name, n),
                partitions=spec.partitions,
                key=spec.key,
                contract=spec.contract,
                dead_letter=False,
                derived_from=spec.name,
            )
        )
    if spec.dead_letter:
        out.append(dead_letter_spec(spec))
    return out


def dead_letter_spec(source: TopicSpec) -> TopicSpec:
    """The ``dlq.`` companion of ``source``: kept forever, since a dead letter keeps its original
    record's timestamp and time retention would delete old ones as soon as they land."""
    return TopicSpec(
        name=dlq_topic(source.name),
        partitions=source.partitions,
        retention_ms=-1,
        key=source.key,
        contract=source.contract,
        dead_letter=False,
        derived_from=source.name,
    )


def spec_for_name(name: str) -> TopicSpec:
    """The spec a topic outside the catalog gets from its name alone: a ``dlq.`` name is the
    dead-letter companion of the rest, any other name a plain topic with the defaults."""
    if name.startswith(DLQ_PREFIX):
        return dead_letter_spec(TopicSpec(name=name.removeprefix(DLQ_PREFIX)))
    return TopicSpec(name=name)


def load_catalog(path: Path | None = None) -> TopicCatalog:
    """Load and validate the catalog; errors name the file, the topic and the field."""
    path = path or CATALOG_PATH
    raw = read_yaml(path, "topic catalog")
    try:
        parsed = _CatalogFile.model_validate(raw)
    except PydanticValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    specs: list[TopicSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(parsed.topics):
        merged = {**parsed.defaults, **entry}
        try:
            spec = TopicSpec.model_validate(merged)
        except PydanticValidationError as exc:
            name = entry.get("name", f"#{index}")
            fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
            raise ConfigError(f"{path}: topic {name}: invalid field(s) {fields}: {exc}") from exc
        for expanded in _expand(spec):
            if expanded.name in seen:
                raise ConfigError(f"{path}: topic {expanded.name} is declared twice")
            seen.add(expanded.name)
            specs.append(expanded)
    return TopicCatalog(topics=specs)
