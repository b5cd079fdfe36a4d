"""The Schema Registry client and the canonical serializers, built once from Settings.

Every stage that writes or reads canonical events (webhook mapping, CDC mapping, processors,
sinks) needs the same two things: a registry client when one is configured, and a serializer per
entity in the configured wire format. They are made here so that the stages agree.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient

from contracts import EVENT_MODELS, make_serializer
from contracts.serde import EventSerializer
from interlock.settings import Settings

__all__ = ["canonical_serializers", "registry_client"]


def registry_client(settings: Settings) -> SchemaRegistryClient | None:
    """The configured Schema Registry client, or None for the registry-free default."""
    sr = settings.schema_registry
    if not sr.url:
        return None
    conf: dict[str, Any] = {"url": sr.url}
    if sr.basic_auth_user_info is not None:
        conf["basic.auth.user.info"] = sr.basic_auth_user_info.get_secret_value()
    # new_client also understands mock:// (an in-process registry, for tests and demos)
    return SchemaRegistryClient.new_client(conf)


def canonical_serializers(
    settings: Settings, registry: SchemaRegistryClient | None = None
) -> dict[str, EventSerializer]:
    """One serializer per canonical entity, in the configured wire format."""
    return {
        entity: make_serializer(
            entity,
            wire_format=settings.wire_format,
            registry=registry,
            subject_strategy=settings.schema_registry.subject_strategy,
        )
        for entity in EVENT_MODELS
    }
