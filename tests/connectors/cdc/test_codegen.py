"""``interlock contracts codegen`` shows the generated CDC writers of the shipped mappings."""

from __future__ import annotations

import ast

import pytest
from typer.testing import CliRunner

from connectors.cdc import CdcMapper, load_mapping_dir
from connectors.cdc.fastpath import compile_shipped_writers
from interlock.cli import app

pytestmark = pytest.mark.unit
runner = CliRunner()
MAPPINGS = [m.name for m in CdcMapper(load_mapping_dir()).mappings]


def test_every_shipped_mapping_has_a_writer_to_show() -> None:
    assert compile_shipped_writers() == [f"cdc-writer:{name}" for name in MAPPINGS]


def test_codegen_lists_the_writer_and_payload_builder_of_every_shipped_mapping() -> None:
    result = runner.invoke(app, ["contracts", "codegen"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in MAPPINGS:
        assert f"cdc-writer:{name}" in result.output
        assert f"cdc-payload:{name}" in result.output
    assert "dataclass-factory:ChangeEvent" in result.output


def test_codegen_show_prints_a_writer_that_compiles() -> None:
    result = runner.invoke(app, ["contracts", "codegen", "--show", "cdc-writer:erp-customers"])
    assert result.exit_code == 0, result.output
    tree = ast.parse(result.output)
    write = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "write")
    assert [a.arg for a in write.args.args] == ["change", "ingested", "header"]
    assert "get('customer_number')" in result.output  # the mapping's own column


def test_codegen_show_of_every_writer_compiles_as_one_text() -> None:
    result = runner.invoke(app, ["contracts", "codegen", "--show", "cdc-"])
    assert result.exit_code == 0, result.output
    compile(result.output, "<codegen output>", "exec")
    for name in MAPPINGS:
        assert f"# <generated cdc-writer:{name}>" in result.output
