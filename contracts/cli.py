"""``interlock contracts``: check, list, show and document the canonical contracts, and show
the code generated from them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from confluent_kafka.schema_registry import SchemaRegistryClient
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from contracts.codec import compile_codec
from contracts.codegen import GeneratedSource, generated_sources
from contracts.compatibility import check_contracts, load_policies
from contracts.errors import ConfigError
from contracts.ownership import OwnershipPolicy, load_ownership
from contracts.registry import CONTRACTS_DIR, ContractRegistry

__all__ = ["also_generate", "app", "render_docs"]

app = typer.Typer(
    help="Canonical event contracts: compatibility gate, catalog, docs and generated code.",
    no_args_is_help=True,
)
console = Console()

ContractsDir = Annotated[
    Path, typer.Option("--contracts-dir", help="Directory holding avro/ and the policy files.")
]


def _load(contracts_dir: Path) -> ContractRegistry:
    try:
        return ContractRegistry.load(contracts_dir)
    except ConfigError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from exc


def _type_name(avro_type: Any) -> str:
    """A compact, readable rendering of an Avro type."""
    if isinstance(avro_type, list):
        branches = [_type_name(t) for t in avro_type if t != "null"]
        text = " | ".join(branches)
        return f"{text}?" if "null" in avro_type else text
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        if logical == "decimal":
            return f"decimal({avro_type['precision']},{avro_type['scale']})"
        if logical:
            return str(logical)
        kind = avro_type["type"]
        if kind == "array":
            return f"array<{_type_name(avro_type['items'])}>"
        if kind == "enum":
            return f"enum {avro_type['name']}"
        if kind == "record":
            return f"record {avro_type['name']}"
        return _type_name(kind)
    return str(avro_type)


@app.command()
def check(
    contracts_dir: ContractsDir = CONTRACTS_DIR,
    registry: Annotated[
        str | None, typer.Option("--registry", help="Schema Registry URL to check against.")
    ] = None,
) -> None:
    """Check every contract against its compatibility policy; exit 1 on any problem."""
    client = SchemaRegistryClient.new_client({"url": registry}) if registry else None
    problems = check_contracts(contracts_dir, registry_client=client)
    if not problems:
        console.print(f"[green]contracts OK[/green] ({contracts_dir})")
        return
    for problem in problems:
        console.print(f"[red]✗[/red] {escape(problem.message)}", soft_wrap=True)
    console.print(f"[red]{len(problems)} problem(s)[/red]")
    raise typer.Exit(1)


@app.command("list")
def list_contracts(contracts_dir: ContractsDir = CONTRACTS_DIR) -> None:
    """List every entity with its versions, policy, record name and latest fingerprint."""
    registry = _load(contracts_dir)
    policies = load_policies(contracts_dir / "compatibility.yaml")
    table = Table(title="Canonical contracts")
    for column in ("entity", "versions", "policy", "record", "fingerprint (latest)"):
        table.add_column(column)
    for entity in registry.entities():
        latest = registry.latest(entity)
        table.add_row(
            entity,
            ", ".join(f"v{v}" for v in registry.versions(entity)),
            policies.for_entity(entity),
            latest.record_name,
            latest.fingerprint.hex(),
        )
    console.print(table)


@app.command()
def show(
    entity: str,
    version: Annotated[int | None, typer.Option("--version", help="Default: latest.")] = None,
    contracts_dir: ContractsDir = CONTRACTS_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print the composed schema.")] = False,
) -> None:
    """Show the fields of one contract version (or its full composed schema with --json)."""
    registry = _load(contracts_dir)
    try:
        cv = registry.get(entity, version)
    except ConfigError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps(cv.schema, indent=2))
        return
    ownership = _ownership(contracts_dir, registry)
    table = Table(title=f"{entity} v{cv.version} ({cv.record_name})")
    for column in ("field", "type", "owner", "doc"):
        table.add_column(column)
    for field in cv.schema["fields"][:-1]:
        table.add_row(field["name"], _type_name(field["type"]), "", field.get("doc", ""))
    for field in cv.payload_schema["fields"]:
        owner = ownership.owner_of(entity, field["name"]) if ownership else None
        table.add_row(
            f"payload.{field['name']}", _type_name(field["type"]), owner or "", field.get("doc", "")
        )
    console.print(table)


def _ownership(contracts_dir: Path, registry: ContractRegistry) -> OwnershipPolicy | None:
    path = contracts_dir / "ownership.yaml"
    return load_ownership(path, contracts=registry) if path.exists() else None


def render_docs(registry: ContractRegistry, ownership: OwnershipPolicy | None) -> str:
    """A Markdown catalog of every contract version: fields, types, docs and owners."""
    lines = ["# Canonical contracts", ""]
    lines.append("Generated from the `.avsc` files in `contracts/avro`; do not edit by hand.")
    for entity in registry.entities():
        for version in registry.versions(entity):
            cv = registry.get(entity, version)
            lines += ["", f"## {entity} v{version}", ""]
            lines += [f"Record `{cv.record_name}`, fingerprint `{cv.fingerprint.hex()}`.", ""]
            lines.append(str(cv.payload_schema.get("doc", "")))
            lines += ["", "| field | type | owner | doc |", "|---|---|---|---|"]
            for field in cv.schema["fields"][:-1]:
                lines.append(f"| {field['name']} | {_type_name(field['type'])} | envelope | "
                             f"{field.get('doc', '')} |")  # fmt: skip
            for field in cv.payload_schema["fields"]:
                owner = ownership.owner_of(entity, field["name"]) if ownership else None
                lines.append(
                    f"| payload.{field['name']} | {_type_name(field['type'])} | "
                    f"{owner or 'shared'} | {field.get('doc', '')} |"
                )
    return "\n".join(lines) + "\n"


@app.command()
def docs(
    output: Annotated[
        Path | None, typer.Option("--output", help="Write here instead of stdout.")
    ] = None,
    contracts_dir: ContractsDir = CONTRACTS_DIR,
) -> None:
    """Write a Markdown catalog of every contract, field, type, doc and owner."""
    registry = _load(contracts_dir)
    try:
        text = render_docs(registry, _ownership(contracts_dir, registry))
    except ConfigError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from exc
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")


_GENERATORS: list[Callable[[], object]] = []
"""What ``codegen`` runs besides the contracts' codecs (``also_generate``)."""


def also_generate(generate: Callable[[], object]) -> None:
    """Have ``codegen`` run ``generate`` too, so it shows what a higher layer generates.

    The composition root (``interlock/cli.py``) adds the CDC writers of the shipped mappings:
    this layer cannot import them.
    """
    if generate not in _GENERATORS:
        _GENERATORS.append(generate)


def _selected(name: str | None) -> list[GeneratedSource]:
    """The sources called ``name``; else those whose names start with it; all without it."""
    sources = generated_sources()
    if name is None:
        return sources
    exact = [s for s in sources if s.name == name]
    return exact or [s for s in sources if s.name.startswith(name)]


@app.command()
def codegen(
    name: Annotated[
        str | None,
        typer.Argument(help="A generated module's name, or the start of names (e.g. cdc-writer)."),
    ] = None,
    show: Annotated[
        bool, typer.Option("--show", help="Print the source (of NAME, else of every one).")
    ] = False,
    contracts_dir: ContractsDir = CONTRACTS_DIR,
) -> None:
    """List the Python source generated from the contracts and mappings, or print it (--show).

    Generates what a service generates when it starts (every contract's codec, every shipped
    CDC mapping's payload builder and writer), without a broker.
    """
    registry = _load(contracts_dir)
    for entity in registry.entities():
        for version in registry.versions(entity):
            compile_codec(registry.get(entity, version).parsed, f"avro-codec:{entity}.v{version}")
    for generate in _GENERATORS:
        generate()
    selected = _selected(name)
    if not selected:
        console.print(f"[red]no generated source is called {escape(str(name))!r}[/red]")
        raise typer.Exit(1)
    if show:
        if len(selected) == 1:
            typer.echo(selected[0].source, nl=False)
            return
        for generated in selected:
            typer.echo(f"# {generated.filename}\n{generated.source}")
        return
    table = Table(title="Generated source")
    for column in ("name", "kind", "lines"):
        table.add_column(column)
    for generated in selected:
        table.add_row(generated.name, generated.kind, str(generated.source.count("\n")))
    console.print(table)
