"""ops/debezium: the connector files, the pinned Connect pom and docker-compose.yml agree."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from interlock.apache_kafka import KAFKA_VERSION
from ops.debezium.connect import CONNECTOR_DIR, connector_config, database_environment

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
POM = ROOT / "interlock/jvm/connect/pom.xml"
NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def _pom_property(name: str) -> str:
    found = ET.parse(POM).getroot().find(f"m:properties/m:{name}", NS)
    assert found is not None
    assert found.text
    return found.text


@pytest.mark.parametrize("file", ["erp-postgres", "erp-postgres-schemaless"])
def test_connector_files_capture_with_pgoutput_and_read_the_database_from_the_environment(
    file: str,
) -> None:
    config = connector_config(file)["config"]
    assert config["connector.class"] == "io.debezium.connector.postgresql.PostgresConnector"
    assert config["plugin.name"] == "pgoutput"
    assert config["skipped.operations"] == "none"  # truncates reach the stage and its audit
    wanted = set(re.findall(r"\$\{env:(\w+)\}", json.dumps(config)))
    assert wanted == set(database_environment({}))


def test_the_schemaless_form_takes_decimals_as_text() -> None:
    """Precise decimals are bytes whose scale only the schema envelope carries."""
    with_schema = connector_config("erp-postgres")["config"]
    without = connector_config("erp-postgres-schemaless")["config"]
    assert with_schema["value.converter.schemas.enable"] == "true"
    assert with_schema["decimal.handling.mode"] == "precise"
    assert without["value.converter.schemas.enable"] == "false"
    assert without["decimal.handling.mode"] == "string"


def test_the_pom_pins_the_brokers_kafka_and_one_debezium_version() -> None:
    assert _pom_property("kafka.version") == KAFKA_VERSION
    root = ET.parse(POM).getroot()
    versions = {
        dep.findtext("m:version", namespaces=NS)
        for dep in root.iterfind(".//m:dependency", NS)
        if dep.findtext("m:groupId", namespaces=NS) == "io.debezium"
    }
    assert versions == {"${debezium.version}"}
    for dep in root.iterfind("m:dependencies/m:dependency", NS):
        assert dep.findtext("m:version", namespaces=NS), "a direct dependency without a version"


def test_compose_runs_the_pinned_debezium_with_the_same_connector_file() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    connect = services["connect"]
    assert connect["image"].endswith(f":{_pom_property('debezium.version')}")
    assert set(database_environment({})) <= set(connect["environment"])
    init = services["connect-init"]
    mounts = dict(v.split(":")[:2] for v in init["volumes"])
    assert mounts["./ops/debezium"] == "/connectors"
    assert "/connectors/erp-postgres.json" in " ".join(init["command"])
    assert (CONNECTOR_DIR / "erp-postgres.json").is_file()
