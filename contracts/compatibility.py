"""The schema evolution gate: every contract version checked against its subject's policy.

Compatibility is decided by the ``avro`` package's ``ReaderWriterCompatibilityChecker``; this
module only chooses which (reader, writer) pairs a policy covers and turns the checker's
findings into messages naming the entity, the versions, the field and the rule broken.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import avro.schema
import yaml
from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityType,
    SchemaIncompatibilityType,
    lookup_writer_field,
)
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from contracts.errors import CompatibilityError, ConfigError
from contracts.ownership import load_ownership
from contracts.registry import CONTRACTS_DIR, ContractRegistry
from contracts.topics import load_catalog

__all__ = [
    "POLICIES",
    "CompatibilityPolicies",
    "Incompatibility",
    "Policy",
    "Problem",
    "assert_compatible",
    "check_contracts",
    "check_evolution",
    "find_incompatibilities",
    "load_policies",
]

Policy = Literal[
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
]
POLICIES: tuple[Policy, ...] = get_args(Policy)
_RULES: dict[str, str] = {
    SchemaIncompatibilityType.reader_field_missing_default_value.value: (
        "the reader has a field the writer lacks and it has no default (add a default)"
    ),
    SchemaIncompatibilityType.type_mismatch.value: (
        "type changed incompatibly; only int→long→float→double and string↔bytes promote"
    ),
    SchemaIncompatibilityType.missing_enum_symbols.value: (
        "the writer uses enum symbols the reader lacks, and the reader enum has no default"
    ),
    SchemaIncompatibilityType.missing_union_branch.value: (
        "the writer uses a union branch the reader lacks"
    ),
    SchemaIncompatibilityType.name_mismatch.value: "a named type was renamed without an alias",
    SchemaIncompatibilityType.fixed_size_mismatch.value: "a fixed type changed size",
}


class CompatibilityPolicies(BaseModel):
    """Compatibility policy per subject (entity), with a default; data in compatibility.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: Policy = "BACKWARD_TRANSITIVE"
    subjects: dict[str, Policy] = Field(default_factory=dict)

    def for_entity(self, entity: str) -> Policy:
        """The policy that governs ``entity``."""
        return self.subjects.get(entity, self.default)


def load_policies(path: Path | str = CONTRACTS_DIR / "compatibility.yaml") -> CompatibilityPolicies:
    """Load the policy file; a missing file means the default policy everywhere."""
    path = Path(path)
    if not path.exists():
        return CompatibilityPolicies()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return CompatibilityPolicies.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except PydanticValidationError as exc:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {where}") from exc


@dataclass(frozen=True)
class Incompatibility:
    """One reason a reader schema cannot read a writer schema, located at a field."""

    field: str
    rule: str
    detail: str

    def describe(self) -> str:
        """Human text: field, what the rule means, what the checker saw, and the rule's name."""
        meaning = _RULES.get(self.rule, self.rule)
        return f"field '{self.field}': {meaning} ({self.detail}) [{self.rule}]"


@dataclass(frozen=True)
class Problem:
    """A contract that breaks its policy (or cannot be checked), in words a reviewer can act on."""

    entity: str
    message: str
    field: str | None = None
    rule: str | None = None
    reader: str | None = None
    writer: str | None = None
    policy: Policy | None = None

    def __str__(self) -> str:
        return self.message


def _parse(schema: Mapping[str, Any] | str) -> avro.schema.Schema:
    text = schema if isinstance(schema, str) else json.dumps(schema)
    return avro.schema.parse(text)


def _compatible(reader: avro.schema.Schema, writer: avro.schema.Schema) -> bool:
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    return result.compatibility is SchemaCompatibilityType.compatible


def _walk(reader: Any, writer: Any, path: str) -> list[Incompatibility]:
    """Locate incompatibilities at the deepest field that explains them."""
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    found: list[Incompatibility] = []
    kinds = (reader.type, writer.type)
    if kinds == ("record", "record") and reader.fullname == writer.fullname:
        for reader_field in reader.fields:
            where = f"{path}.{reader_field.name}" if path else reader_field.name
            writer_field = lookup_writer_field(writer_schema=writer, reader_field=reader_field)
            if writer_field is None:
                if not reader_field.has_default:
                    found.append(
                        Incompatibility(
                            where,
                            SchemaIncompatibilityType.reader_field_missing_default_value.value,
                            f"'{reader_field.name}' is missing from the writer",
                        )
                    )
            else:
                found.extend(_walk(reader_field.type, writer_field.type, where))
    elif kinds == ("union", "union"):
        for branch in writer.schemas:
            same = [
                r
                for r in reader.schemas
                if r.type == branch.type
                and getattr(r, "fullname", None) == getattr(branch, "fullname", None)
            ]
            if same:
                found.extend(_walk(same[0], branch, path))
            elif not any(_compatible(r, branch) for r in reader.schemas):
                found.append(
                    Incompatibility(
                        path,
                        SchemaIncompatibilityType.missing_union_branch.value,
                        f"writer branch {getattr(branch, 'fullname', branch.type)}",
                    )
                )
    elif kinds == ("array", "array"):
        found.extend(_walk(reader.items, writer.items, f"{path}[]"))
    if found:
        return found
    rules = sorted({t.value for t in result.incompatibilities})
    return [
        Incompatibility(path or "<root>", rule, "; ".join(sorted(result.messages)))
        for rule in rules
    ]


def find_incompatibilities(
    reader: Mapping[str, Any] | str, writer: Mapping[str, Any] | str
) -> list[Incompatibility]:
    """Why ``reader`` cannot read data written with ``writer``; empty when it can."""
    return _walk(_parse(reader), _parse(writer), "")


def _pairs(policy: Policy, new: int, earlier: Sequence[int]) -> list[tuple[int, int]]:
    """(reader, writer) version pairs a policy checks for the version ``new``."""
    if policy == "NONE" or not earlier:
        return []
    olds = list(earlier) if policy.endswith("_TRANSITIVE") else [earlier[-1]]
    pairs: list[tuple[int, int]] = []
    for old in olds:
        if policy.startswith(("BACKWARD", "FULL")):
            pairs.append((new, old))
        if policy.startswith(("FORWARD", "FULL")):
            pairs.append((old, new))
    return pairs


def check_evolution(
    entity: str,
    versions: Mapping[int, Mapping[str, Any] | str],
    policy: Policy,
    *,
    labels: Mapping[int, str] | None = None,
) -> list[Problem]:
    """Check every version of ``entity`` against the earlier ones ``policy`` covers.

    Args:
        entity: subject name used in messages.
        versions: schema per version number (JSON data or text), any order.
        policy: compatibility policy of the subject.
        labels: how to name a version in messages (default ``v<N>``).
    """
    label = {v: (labels or {}).get(v, f"v{v}") for v in versions}
    parsed = {v: _parse(s) for v, s in versions.items()}
    order = sorted(versions)
    problems: list[Problem] = []
    for index, new in enumerate(order):
        for reader, writer in _pairs(policy, new, order[:index]):
            old = writer if reader == new else reader
            for inc in _walk(parsed[reader], parsed[writer], ""):
                problems.append(
                    Problem(
                        entity=entity,
                        field=inc.field,
                        rule=inc.rule,
                        reader=label[reader],
                        writer=label[writer],
                        policy=policy,
                        message=(
                            f"{entity}: {label[new]} breaks {policy} against {label[old]} "
                            f"({label[reader]} reading data written with {label[writer]}): "
                            f"{inc.describe()}"
                        ),
                    )
                )
    return problems


def assert_compatible(
    entity: str, versions: Mapping[int, Mapping[str, Any] | str], policy: Policy
) -> None:
    """Raise CompatibilityError listing every problem when the versions break ``policy``."""
    problems = check_evolution(entity, versions, policy)
    if problems:
        raise CompatibilityError("\n".join(p.message for p in problems))


def _registered_versions(client: SchemaRegistryClient, subject: str) -> dict[int, str] | None:
    """Schema text per registered version of ``subject``; None when the subject is unknown."""
    try:
        numbers = client.get_versions(subject)
    except SchemaRegistryError as exc:
        if exc.http_status_code == 404:
            return None
        raise ConfigError(f"schema registry: cannot list versions of {subject!r}: {exc}") from exc
    return {n: str(client.get_version(subject, n).schema.schema_str) for n in numbers}


def _subjects(contracts_dir: Path, entity: str, record_name: str) -> list[str]:
    """Registry subjects of ``entity``: its record name, and ``<topic>-value`` per catalog topic."""
    catalog_path = contracts_dir / "topics.yaml"
    subjects = [record_name]
    if catalog_path.exists():
        catalog = load_catalog(catalog_path)
        subjects += [
            f"{t.name}-value"
            for t in catalog.topics
            if t.contract == entity and t.derived_from is None
        ]
    return subjects


def _check_against_registry(
    contracts_dir: Path, registry: ContractRegistry, policies: CompatibilityPolicies,
    client: SchemaRegistryClient,
) -> list[Problem]:  # fmt: skip
    problems: list[Problem] = []
    for entity in registry.entities():
        local = registry.latest(entity)
        policy = policies.for_entity(entity)
        for subject in _subjects(contracts_dir, entity, local.record_name):
            remote = _registered_versions(client, subject)
            if remote is None:
                continue
            numbers = sorted(remote)
            versions: dict[int, Mapping[str, Any] | str] = {
                i: remote[n] for i, n in enumerate(numbers)
            }
            labels = {i: f"{subject}@{n}" for i, n in enumerate(numbers)}
            new = len(numbers)
            versions[new] = local.schema
            labels[new] = f"local v{local.version}"
            problems += [
                p for p in check_evolution(entity, versions, policy, labels=labels)
                if labels[new] in (p.reader, p.writer)
            ]  # fmt: skip
    return problems


def check_contracts(
    contracts_dir: Path | str = CONTRACTS_DIR,
    registry_client: SchemaRegistryClient | None = None,
) -> list[Problem]:
    """Every problem with the contracts in ``contracts_dir``; an empty list means they pass.

    Loads every schema, checks each entity's versions against its policy (compatibility.yaml),
    validates ownership.yaml against the schemas, and with ``registry_client`` also checks the
    latest local version of each entity against what the registry holds for its subjects.
    """
    contracts_dir = Path(contracts_dir)
    try:
        registry = ContractRegistry.load(contracts_dir)
        policies = load_policies(contracts_dir / "compatibility.yaml")
    except ConfigError as exc:
        return [Problem(entity="*", message=str(exc), rule="INVALID_CONTRACT")]
    problems: list[Problem] = []
    unknown = sorted(set(policies.subjects) - set(registry.entities()))
    for entity in unknown:
        problems.append(
            Problem(
                entity=entity,
                rule="INVALID_CONTRACT",
                message=f"{contracts_dir / 'compatibility.yaml'}: unknown entity {entity!r}",
            )
        )
    for entity in registry.entities():
        versions = {v: registry.get(entity, v).schema for v in registry.versions(entity)}
        problems += check_evolution(entity, versions, policies.for_entity(entity))
    ownership_path = contracts_dir / "ownership.yaml"
    if ownership_path.exists():
        try:
            load_ownership(ownership_path, contracts=registry)
        except ConfigError as exc:
            problems.append(Problem(entity="*", message=str(exc), rule="INVALID_OWNERSHIP"))
    if registry_client is not None:
        try:
            problems += _check_against_registry(contracts_dir, registry, policies, registry_client)
        except (ConfigError, SchemaRegistryError) as exc:
            problems.append(Problem(entity="*", message=str(exc), rule="REGISTRY_UNAVAILABLE"))
    return problems
