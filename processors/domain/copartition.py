"""The co-partitioning rule: joined topics must all have the same partition count."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["copartition_problem"]


def copartition_problem(
    partitions: Mapping[str, int | None], required: Sequence[str]
) -> str | None:
    """Why the processors must not start (naming the topic), or None when all agree.

    ``partitions`` maps each topic name to its partition count (None: missing on the broker).
    """
    missing = [t for t in required if not partitions.get(t)]
    if missing:
        return (
            f"topic {missing[0]} does not exist (missing: {', '.join(missing)}); "
            "create the catalog with `interlock topics apply`"
        )
    expected_topic = required[0]
    expected = partitions[expected_topic]
    for topic in required[1:]:
        if partitions[topic] != expected:
            return (
                f"topic {topic} has {partitions[topic]} partitions but {expected_topic} has "
                f"{expected}: every canonical and command topic is keyed by the canonical account "
                "id and must have the same partition count (co-partitioning), or joins break"
            )
    return None
