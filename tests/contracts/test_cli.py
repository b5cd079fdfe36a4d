"""The ``contracts`` CLI lists, shows and documents the shipped contracts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contracts.cli import app

pytestmark = pytest.mark.unit
runner = CliRunner()


def test_list_shows_every_entity() -> None:
    result = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for entity in ("account", "contact", "product", "quote", "order", "invoice", "shipment"):
        assert entity in result.output


def test_show_prints_fields_with_owner() -> None:
    result = runner.invoke(app, ["show", "account", "--version", "1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "payload.credit_limit" in result.output
    assert "decimal(18,4)" in result.output


def test_show_json_is_the_composed_schema() -> None:
    result = runner.invoke(app, ["show", "order", "--json"])
    schema = json.loads(result.output)
    assert schema["name"] == "OrderEvent"
    assert schema["fields"][-1]["name"] == "payload"


def test_show_unknown_entity_exits_1() -> None:
    result = runner.invoke(app, ["show", "ordre"])
    assert result.exit_code == 1
    assert "unknown contract 'ordre'" in result.output


def test_docs_writes_markdown_catalog(tmp_path: Path) -> None:
    output = tmp_path / "contracts.md"
    result = runner.invoke(app, ["docs", "--output", str(output)])
    assert result.exit_code == 0, result.output
    text = output.read_text()
    assert "## order v1" in text
    assert "| payload.credit_limit | decimal(18,4)? | erp |" in text
    assert "| payload.name | string? | crm |" in text
