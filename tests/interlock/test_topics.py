"""``interlock topics apply``: idempotent, reports drift with a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from confluent_kafka.admin import AdminClient, NewTopic

from contracts.errors import ConfigError
from contracts.topics import load_catalog, spec_for_name

pytestmark = pytest.mark.integration


def _catalog(tmp_path: Path, prefix: str) -> Path:
    path = tmp_path / "topics.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "defaults": {"dead_letter": True},
                "topics": [
                    {"name": f"{prefix}.orders", "partitions": 3, "retry_tiers": 1},
                    {"name": f"{prefix}.state", "partitions": 2, "cleanup_policy": "compact"},
                ],
            }
        )
    )
    return path


def _interlock(bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": bootstrap, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "interlock.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_apply_twice_then_drift(kafka_bootstrap: str, admin: AdminClient, tmp_path: Path) -> None:
    prefix = f"cat{uuid.uuid4().hex[:8]}"
    catalog = _catalog(tmp_path, prefix)

    first = _interlock(kafka_bootstrap, "topics", "apply", "--catalog", str(catalog))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "created 5 topic(s)" in first.stdout
    topics = admin.list_topics(timeout=10).topics
    assert len(topics[f"{prefix}.orders"].partitions) == 3
    assert f"retry.{prefix}.orders.1" in topics
    assert f"dlq.{prefix}.state" in topics

    second = _interlock(kafka_bootstrap, "topics", "apply", "--catalog", str(catalog))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "nothing to change" in second.stdout

    listed = _interlock(kafka_bootstrap, "topics", "list", "--catalog", str(catalog))
    assert listed.returncode == 0, listed.stdout + listed.stderr


def test_wrong_partition_count_is_drift(
    kafka_bootstrap: str, admin: AdminClient, tmp_path: Path
) -> None:
    prefix = f"cat{uuid.uuid4().hex[:8]}"
    catalog = _catalog(tmp_path, prefix)
    futures = admin.create_topics(
        [NewTopic(f"{prefix}.orders", 5, 1, config={"cleanup.policy": "delete"})]
    )
    for future in futures.values():
        future.result(30)

    result = _interlock(kafka_bootstrap, "topics", "apply", "--catalog", str(catalog))
    assert result.returncode == 1
    assert f"{prefix}.orders: partitions is 5, catalog says 3" in result.stdout

    listed = _interlock(kafka_bootstrap, "topics", "list", "--catalog", str(catalog))
    assert listed.returncode == 1


def test_catalog_errors_name_the_file_and_topic(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"topics": [{"name": "x", "cleanup_policy": "shred"}]}))
    with pytest.raises(ConfigError, match=r"bad\.yaml: topic x: invalid field\(s\) cleanup_policy"):
        load_catalog(path)


def test_shipped_catalog_is_valid_and_canonical_topics_are_co_partitioned() -> None:
    catalog = load_catalog()
    co = [t for t in catalog.topics if t.co_partitioned]
    assert {t.name for t in co} >= {"canonical.account.v1", "canonical.quote.v1"}
    assert len({t.partitions for t in co}) == 1


def test_every_dead_letter_topic_of_the_shipped_catalog_is_kept_forever() -> None:
    """A dead letter keeps its original record's timestamp: under time retention, the broker's
    retention check would delete a letter of an old record at once, whatever its failure time."""
    catalog = load_catalog()
    dead_letter_topics = [t for t in catalog.topics if t.name.startswith("dlq.")]
    assert dead_letter_topics
    for topic in dead_letter_topics:
        assert topic.config(default_retention_ms=7 * 24 * 3600 * 1000)["retention.ms"] == "-1"


def test_a_topic_outside_the_catalog_gets_the_config_of_its_kind_by_name() -> None:
    """Tests make their topics through this rule, so they cannot drift from production's."""
    week = 7 * 24 * 3600 * 1000
    catalog = load_catalog()
    quote_dlq = catalog.get("dlq.canonical.quote.v1")
    assert spec_for_name("dlq.canonical.quote.v1").config(week) == quote_dlq.config(week)
    assert spec_for_name("dlq.test.abc").config(week) == {
        "cleanup.policy": "delete",
        "retention.ms": "-1",
    }
    assert spec_for_name("test.abc").config(week) == {
        "cleanup.policy": "delete",
        "retention.ms": str(week),
    }
