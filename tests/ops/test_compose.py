"""docker-compose.yml: valid against the Compose specification, and consistent with the repo.

The schema ``tests/ops/compose-spec.json`` is the Compose specification's JSON schema, vendored
unchanged from the ``docker-compose`` 1.29.2 wheel on PyPI (``compose/config/compose_spec.json``,
itself a copy of ``schema/compose-spec.json`` of github.com/compose-spec/compose-spec).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from interlock.apache_kafka import KAFKA_VERSION, shared_broker_properties
from interlock.cli import app
from tests.ops.promql import ROOT

pytestmark = pytest.mark.unit

COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = Path(__file__).parent / "compose-spec.json"
INTERLOCK_SERVICES = {"worker", "webhooks", "sinks", "cdc", "lag-exporter"}
METRICS_PORT = 9464


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def cli_commands() -> set[str]:
    import typer.main

    group = typer.main.get_command(app)
    return set(group.commands)  # type: ignore[attr-defined]


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft201909Validator.check_schema(schema)
    validator = jsonschema.Draft201909Validator(schema)
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []


def test_the_schema_really_rejects_what_compose_would() -> None:
    validator = jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text()))
    broken = compose()
    broken["services"]["worker"]["restrat"] = "always"
    assert not validator.is_valid(broken)


def test_stack_has_kafka_kraft_schema_registry_prometheus_grafana_and_interlock() -> None:
    found = services()
    assert found["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in found["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert found["schema-registry"]["image"].startswith("confluentinc/cp-schema-registry:")
    assert found["prometheus"]["image"].startswith("prom/prometheus:")
    assert found["grafana"]["image"].startswith("grafana/grafana:")
    assert set(found) >= INTERLOCK_SERVICES


def test_compose_kafka_runs_the_embedded_brokers_version_and_settings() -> None:
    """One set of broker settings: broker.properties, read by the embedded broker, and compose."""
    kafka = services()["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"
    env = {k: str(v) for k, v in kafka["environment"].items()}
    shared = shared_broker_properties()
    assert shared, "broker.properties is empty"
    for key, value in shared.items():
        assert env.get("KAFKA_" + key.upper().replace(".", "_")) == value, key
    listener_keys = {
        "KAFKA_LISTENERS",
        "KAFKA_ADVERTISED_LISTENERS",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
        "KAFKA_CONTROLLER_QUORUM_VOTERS",
    }
    extra = set(env) - listener_keys - {"KAFKA_" + k.upper().replace(".", "_") for k in shared}
    assert not extra, f"set these in interlock/jvm/kafka/broker.properties instead: {extra}"


@pytest.mark.parametrize("name", sorted(INTERLOCK_SERVICES))
def test_interlock_service_runs_an_interlock_command_on_kafka_with_confluent_format(
    name: str,
) -> None:
    service = services()[name]
    assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    assert service["command"][0] in cli_commands()
    env = service["environment"]
    assert env["INTERLOCK_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["INTERLOCK_SCHEMA_REGISTRY__URL"].startswith("http://schema-registry:")
    assert env["INTERLOCK_WIRE_FORMAT"] == "confluent"
    assert env["INTERLOCK_METRICS__HOST"] == "0.0.0.0"
    assert int(env["INTERLOCK_METRICS__PORT"]) == METRICS_PORT
    assert any(p.endswith(f":{METRICS_PORT}") for p in service["ports"])


def test_every_service_has_an_image_or_a_build_and_well_formed_ports() -> None:
    host_ports: list[int] = []
    for name, service in services().items():
        assert "image" in service or "build" in service, name
        for mapping in service.get("ports", []):
            host, container = str(mapping).split(":")
            assert 0 < int(host) < 65536, (name, mapping)
            assert 0 < int(container) < 65536, (name, mapping)
            host_ports.append(int(host))
    assert len(host_ports) == len(set(host_ports)), "two services publish the same host port"


def test_every_mounted_path_exists_in_the_repository() -> None:
    named = set(compose().get("volumes", {}))
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source in named:
                continue
            assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_grafana_mounts_match_its_provisioning() -> None:
    grafana = services()["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    assert mounts["./ops/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load(
        (ROOT / "ops/grafana/provisioning/dashboards/provider.yaml").read_text()
    )
    assert mounts["./ops/grafana/dashboards"] == provider["providers"][0]["options"]["path"]
    assert any((ROOT / "ops/grafana/dashboards").glob("*.json"))


def test_prometheus_scrapes_every_interlock_service_where_compose_runs_it() -> None:
    prometheus = services()["prometheus"]
    mounts = dict(v.split(":")[:2] for v in prometheus["volumes"])
    config_path = next(src for src, dst in mounts.items() if dst.endswith("prometheus.yml"))
    config = yaml.safe_load((ROOT / config_path).read_text())
    targets = {
        job["job_name"]: target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    for name in INTERLOCK_SERVICES:
        assert targets[f"interlock-{name}"] == f"{name}:{METRICS_PORT}"
    assert mounts["./ops/prometheus/rules"] == "/etc/prometheus/rules"
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]


def test_every_long_running_service_is_restarted_unless_stopped() -> None:
    """In production the container runtime is the supervisor ``interlock up`` is on one machine
    (docs/operations/supervision.md): a service that dies is started again."""
    for name, service in services().items():
        one_shot = service.get("restart") == "no"  # topic and connector set-up jobs
        if not one_shot:
            assert service.get("restart") == "unless-stopped", name
    assert not any(services()[name].get("restart") == "no" for name in INTERLOCK_SERVICES)
