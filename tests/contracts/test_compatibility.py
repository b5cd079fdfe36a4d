"""Schema evolution as an executable specification: one small schema pair and one rule per test.

Each entry says what a reviewer will read when a contract change breaks its subject's policy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from typer.testing import CliRunner

from contracts import (
    CONTRACTS_DIR,
    CompatibilityError,
    assert_compatible,
    check_contracts,
    check_evolution,
    default_registry,
    find_incompatibilities,
    load_policies,
)
from contracts.cli import app

pytestmark = pytest.mark.unit


def record(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": "Deal", "namespace": "t", "fields": list(fields)}


ID = {"name": "id", "type": "string"}
AMOUNT_LONG = {"name": "amount", "type": "long"}
AMOUNT_INT = {"name": "amount", "type": "int"}
NOTE_OPTIONAL = {"name": "note", "type": ["null", "string"], "default": None}
NOTE_REQUIRED = {"name": "note", "type": "string"}


def stage(symbols: list[str], default: str | None = None) -> dict[str, Any]:
    enum: dict[str, Any] = {"type": "enum", "name": "Stage", "symbols": symbols}
    if default:
        enum["default"] = default
    return {"name": "stage", "type": enum}


def test_adding_an_optional_field_with_default_is_backward_compatible() -> None:
    assert_compatible("deal", {1: record(ID), 2: record(ID, NOTE_OPTIONAL)}, "BACKWARD")


def test_adding_a_field_without_default_breaks_backward() -> None:
    with pytest.raises(
        CompatibilityError,
        match=r"deal: v2 breaks BACKWARD against v1 .*field 'note'.*no default"
        r".*\[reader_field_missing_default_value\]",
    ):
        assert_compatible("deal", {1: record(ID), 2: record(ID, NOTE_REQUIRED)}, "BACKWARD")


def test_narrowing_a_type_breaks_backward() -> None:
    with pytest.raises(
        CompatibilityError, match=r"field 'amount'.*type changed.*long.*\[type_mismatch\]"
    ):
        assert_compatible("deal", {1: record(AMOUNT_LONG), 2: record(AMOUNT_INT)}, "BACKWARD")


def test_widening_a_type_is_backward_compatible() -> None:
    assert_compatible("deal", {1: record(AMOUNT_INT), 2: record(AMOUNT_LONG)}, "BACKWARD")


def test_removing_an_enum_symbol_without_default_breaks_backward() -> None:
    with pytest.raises(
        CompatibilityError, match=r"field 'stage'.*enum symbols.*LOST.*\[missing_enum_symbols\]"
    ):
        assert_compatible(
            "deal", {1: record(stage(["OPEN", "WON", "LOST"])), 2: record(stage(["OPEN", "WON"]))},
            "BACKWARD",
        )  # fmt: skip


def test_new_enum_symbol_reaches_old_readers_through_the_enum_default() -> None:
    old = record(stage(["UNKNOWN", "OPEN"], default="UNKNOWN"))
    new = record(stage(["UNKNOWN", "OPEN", "WON"], default="UNKNOWN"))
    assert_compatible("deal", {1: old, 2: new}, "FULL_TRANSITIVE")
    no_default = record(stage(["UNKNOWN", "OPEN"]))
    with pytest.raises(CompatibilityError, match=r"v1 reading data written with v2.*'stage'"):
        assert_compatible("deal", {1: no_default, 2: new}, "FORWARD")


def test_removing_a_field_breaks_forward_only_when_old_readers_need_it() -> None:
    assert_compatible("deal", {1: record(ID, NOTE_OPTIONAL), 2: record(ID)}, "FORWARD")
    with pytest.raises(CompatibilityError, match=r"field 'note'"):
        assert_compatible("deal", {1: record(ID, NOTE_REQUIRED), 2: record(ID)}, "FORWARD")


V1 = record(ID)
V3 = record(ID, {"name": "note", "type": ["null", "string"]})


def test_v3_compatible_with_v2_but_not_v1_fails_only_transitively() -> None:
    v2_with_default = record(ID, NOTE_OPTIONAL)
    versions = {1: V1, 2: v2_with_default, 3: V3}
    assert [p.message for p in check_evolution("deal", versions, "BACKWARD")] == []
    with pytest.raises(
        CompatibilityError, match=r"deal: v3 breaks BACKWARD_TRANSITIVE against v1 .*'note'"
    ):
        assert_compatible("deal", versions, "BACKWARD_TRANSITIVE")


def test_policy_none_accepts_anything() -> None:
    assert check_evolution("deal", {1: record(AMOUNT_LONG), 2: record(AMOUNT_INT)}, "NONE") == []


def test_nested_fields_are_named_by_path() -> None:
    address_v1 = {
        "type": "record",
        "name": "Address",
        "fields": [{"name": "city", "type": "string"}],
    }
    address_v2 = {
        **address_v1,
        "fields": [*address_v1["fields"], {"name": "zip", "type": "string"}],
    }
    found = find_incompatibilities(
        record({"name": "ship_to", "type": ["null", address_v2], "default": None}),
        record({"name": "ship_to", "type": ["null", address_v1], "default": None}),
    )
    assert [(i.field, i.rule) for i in found] == [
        ("ship_to.zip", "reader_field_missing_default_value")
    ]


def test_shipped_contracts_pass_their_policies() -> None:
    assert check_contracts() == []
    assert load_policies(CONTRACTS_DIR / "compatibility.yaml").for_entity("order") == (
        "BACKWARD_TRANSITIVE"
    )


def _broken_contracts_dir(tmp_path: Path) -> Path:
    """A copy of the shipped contracts where order v2 adds a field without a default."""
    for name in ("avro", "compatibility.yaml", "ownership.yaml", "topics.yaml"):
        source = CONTRACTS_DIR / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            shutil.copy(source, tmp_path / name)
    v1 = json.loads((tmp_path / "avro/order/v1.avsc").read_text())
    v2 = {**v1, "fields": [*v1["fields"], {"name": "incoterms", "type": "string"}]}
    (tmp_path / "avro/order/v2.avsc").write_text(json.dumps(v2))
    return tmp_path


def test_check_names_entity_versions_field_and_rule(tmp_path: Path) -> None:
    problems = check_contracts(_broken_contracts_dir(tmp_path))
    assert [(p.entity, p.reader, p.writer, p.field, p.rule) for p in problems] == [
        ("order", "v2", "v1", "payload.incoterms", "reader_field_missing_default_value")
    ]


def test_cli_check_exits_1_on_a_broken_contracts_dir(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["check", "--contracts-dir", str(_broken_contracts_dir(tmp_path))]
    )
    assert result.exit_code == 1, result.output
    assert "order: v2 breaks BACKWARD_TRANSITIVE against v1" in result.output
    assert "payload.incoterms" in result.output
    assert "reader_field_missing_default_value" in result.output


def test_cli_check_passes_on_shipped_contracts() -> None:
    result = CliRunner().invoke(app, ["check"])
    assert result.exit_code == 0, result.output


def test_check_against_registry_flags_local_schema_that_breaks_registered_one() -> None:
    client = SchemaRegistryClient.new_client({"url": "mock://compat-registry"})
    shipped = default_registry().latest("order").schema
    client.register_schema("canonical.order.v1-value", Schema(json.dumps(shipped), "AVRO"))
    assert check_contracts(registry_client=client) == []
    wider = json.loads(json.dumps(shipped))
    payload_fields = wider["fields"][-1]["type"]["fields"]
    revision = next(f for f in payload_fields if f["name"] == "quote_revision")
    revision["type"] = ["null", "long"]
    client.register_schema("canonical.order.v1-value", Schema(json.dumps(wider), "AVRO"))
    problems = check_contracts(registry_client=client)
    assert {(p.entity, p.field, p.rule, p.writer) for p in problems} == {
        ("order", "payload.quote_revision", "missing_union_branch", "canonical.order.v1-value@2")
    }
    assert "local v1" in problems[0].message
