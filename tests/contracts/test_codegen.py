"""Generated source is compiled in one place, kept by name, and shown by ``contracts codegen``."""

from __future__ import annotations

import ast
import hashlib
import traceback
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contracts.cli import app
from contracts.codec import compile_codec
from contracts.codegen import compile_generated, generated_function, generated_source
from contracts.registry import default_registry

pytestmark = pytest.mark.unit
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def test_a_generated_function_is_kept_under_its_name_and_shows_in_tracebacks() -> None:
    source = "def fail(x):\n    y = x + 1\n    raise ValueError(y)\n"
    fail = generated_function("test:fail", source, {}, "fail")
    kept = generated_source("test:fail")
    assert kept is not None
    assert kept.source == source
    assert kept.kind == "test"
    with pytest.raises(ValueError, match="2") as err:
        fail(1)
    frames = traceback.extract_tb(err.value.__traceback__)
    assert frames[-1].filename == "<generated test:fail>"
    assert frames[-1].line == "raise ValueError(y)"


def test_the_latest_source_of_a_name_is_kept() -> None:
    compile_generated("test:twice", "a = 1\n", {})
    ns = compile_generated("test:twice", "a = 2\n", {})
    assert ns["a"] == 2
    kept = generated_source("test:twice")
    assert kept is not None
    assert kept.source == "a = 2\n"


def test_a_codec_is_kept_under_the_name_given_or_its_record_and_digest() -> None:
    contract = default_registry().get("product", 1)
    codec = compile_codec(contract.parsed, "avro-codec:test-product")
    assert codec is not None
    kept = generated_source("avro-codec:test-product")
    assert kept is not None
    assert kept.source == codec.source
    unnamed = compile_codec(contract.parsed)
    assert unnamed is not None
    digest = hashlib.sha256(unnamed.source.encode()).hexdigest()[:8]
    kept = generated_source(f"avro-codec:{contract.parsed['name']}@{digest}")
    assert kept is not None
    assert kept.source == unnamed.source


def test_codegen_lists_the_codec_of_every_contract_version() -> None:
    result = runner.invoke(app, ["codegen"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    registry = default_registry()
    for entity in registry.entities():
        for version in registry.versions(entity):
            assert f"avro-codec:{entity}.v{version}" in result.output


def test_codegen_show_prints_the_source_of_one_codec_which_compiles() -> None:
    result = runner.invoke(app, ["codegen", "--show", "avro-codec:order.v1"])
    assert result.exit_code == 0, result.output
    tree = ast.parse(result.output)
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert {"_e0", "_d0"} <= defined
    assert "_write = _e0" in result.output
    assert "_decimal_bytes(" in result.output  # order lines carry decimals


def test_codegen_show_with_the_start_of_names_prints_each_under_its_name() -> None:
    result = runner.invoke(app, ["codegen", "--show", "avro-codec:"])
    assert result.exit_code == 0, result.output
    compile(result.output, "<codegen output>", "exec")
    for entity in default_registry().entities():
        assert f"# <generated avro-codec:{entity}.v1>" in result.output


def test_codegen_of_an_unknown_name_exits_1() -> None:
    result = runner.invoke(app, ["codegen", "--show", "no-such-kind:thing"])
    assert result.exit_code == 1
    assert "no generated source" in result.output


def test_only_the_generator_module_compiles_source() -> None:
    """One generator: every other module hands its source to ``contracts.codegen``."""
    offenders = []
    for package in ("contracts", "interlock", "connectors", "processors", "ops"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "contracts" / "codegen.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in ("exec", "compile", "eval")
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
