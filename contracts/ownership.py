"""Field ownership between CRM and ERP, as data: who may change what, and what happens otherwise.

``ownership.yaml`` names, per entity and field, the owning system and the action on a change
from the other system (``strip`` the field, or ``reject`` the change). Fields are validated
against the entity's payload schema, so a typo fails at load time, naming file, line and field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, NamedTuple, TypeVar, overload

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from contracts.errors import ConfigError
from contracts.registry import CONTRACTS_DIR, ContractRegistry, default_registry

__all__ = [
    "OWNERSHIP_PATH",
    "EntityOwnership",
    "FieldRule",
    "OwnershipDecision",
    "OwnershipPolicy",
    "OwnershipViolation",
    "apply_ownership",
    "load_ownership",
]

OWNERSHIP_PATH = CONTRACTS_DIR / "ownership.yaml"
System = Literal["crm", "erp"]
Action = Literal["strip", "reject"]
V = TypeVar("V")
T = TypeVar("T")


class FieldRule(BaseModel):
    """Owner of one field, and the action on a change from a non-owner (None: entity default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    owner: System
    on_conflict: Action | None = None


class EntityOwnership(BaseModel):
    """Owned fields of one entity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on_conflict: Action | None = None
    fields: dict[str, FieldRule] = Field(default_factory=dict)

    @field_validator("fields", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """Accept ``field: crm`` as ``field: {owner: crm}``."""
        if isinstance(value, Mapping):
            return {k: {"owner": v} if isinstance(v, str) else v for k, v in value.items()}
        return value


@dataclass(frozen=True)
class OwnershipViolation:
    """A change to ``field`` from a system that does not own it."""

    entity: str
    field: str
    owner: System
    source_system: str
    action: Action

    def __str__(self) -> str:
        outcome = "rejected" if self.action == "reject" else "stripped"
        return (
            f"{self.entity}.{self.field} is owned by {self.owner}; "
            f"change from {self.source_system} {outcome}"
        )


class OwnershipDecision(NamedTuple, Generic[T]):
    """What survives of a change (``allowed``) and which owned fields it tried to touch."""

    allowed: T
    violations: list[OwnershipViolation]

    @property
    def rejected(self) -> bool:
        """True when a violated field's action is ``reject``: the whole change must be refused."""
        return any(v.action == "reject" for v in self.violations)


class OwnershipPolicy(BaseModel):
    """Ownership rules of every entity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_on_conflict: Action = "strip"
    entities: dict[str, EntityOwnership] = Field(default_factory=dict)

    def owner_of(self, entity: str, field: str) -> System | None:
        """The system that owns ``entity.field``, or None when either may change it."""
        rule = self._rule(entity, field)
        return rule.owner if rule else None

    def action_for(self, entity: str, field: str) -> Action:
        """What happens to a non-owner's change of ``entity.field``."""
        rule = self._rule(entity, field)
        entity_rules = self.entities.get(entity)
        return (
            (rule.on_conflict if rule else None)
            or (entity_rules.on_conflict if entity_rules else None)
            or self.default_on_conflict
        )

    def _rule(self, entity: str, field: str) -> FieldRule | None:
        rules = self.entities.get(entity)
        return rules.fields.get(field) if rules else None

    @overload
    def apply(  # type: ignore[overload-overlap]
        self, entity: str, source_system: str, changes: Mapping[str, V]
    ) -> OwnershipDecision[dict[str, V]]: ...

    @overload
    def apply(
        self, entity: str, source_system: str, changes: Iterable[str]
    ) -> OwnershipDecision[list[str]]: ...

    def apply(self, entity: str, source_system: str, changes: Any) -> Any:
        """Split a change into what ``source_system`` may change and what it may not.

        Args:
            entity: contract name, e.g. ``"account"``.
            source_system: ``crm`` or ``erp`` (anything else owns nothing).
            changes: changed field values (a mapping) or changed field names.

        Returns:
            ``(allowed, violations)``: allowed has the shape of ``changes``.
        """
        violations: list[OwnershipViolation] = []
        allowed_names: list[str] = []
        for name in changes:
            owner = self.owner_of(entity, name)
            if owner is None or owner == source_system:
                allowed_names.append(name)
            else:
                action = self.action_for(entity, name)
                violations.append(OwnershipViolation(entity, name, owner, source_system, action))
        if isinstance(changes, Mapping):
            return OwnershipDecision({n: changes[n] for n in allowed_names}, violations)
        return OwnershipDecision(allowed_names, violations)


@overload
def apply_ownership(  # type: ignore[overload-overlap]
    policy: OwnershipPolicy, entity: str, source_system: str, changes: Mapping[str, V]
) -> OwnershipDecision[dict[str, V]]: ...


@overload
def apply_ownership(
    policy: OwnershipPolicy, entity: str, source_system: str, changes: Iterable[str]
) -> OwnershipDecision[list[str]]: ...


def apply_ownership(policy: OwnershipPolicy, entity: str, source_system: str, changes: Any) -> Any:
    """Pure form of :meth:`OwnershipPolicy.apply`."""
    return policy.apply(entity, source_system, changes)


def _line_of(root: yaml.Node | None, loc: Iterable[Any]) -> int | None:
    """1-based line of the YAML node at ``loc`` (or of its deepest existing parent)."""
    node, line = root, None
    for key in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        for key_node, value_node in node.value:
            if key_node.value == str(key):
                line, node = key_node.start_mark.line + 1, value_node
                break
        else:
            break
    return line


def load_ownership(
    path: Path | str = OWNERSHIP_PATH, *, contracts: ContractRegistry | None = None
) -> OwnershipPolicy:
    """Load and validate ownership rules; errors name the file, line, entity and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text) or {}
        root = yaml.compose(text)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read ownership rules: {exc}") from exc
    try:
        policy = OwnershipPolicy.model_validate(raw)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        line = _line_of(root, first["loc"])
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}:{line}: {where}: {first['msg']}") from exc
    contracts = contracts or default_registry()
    known = contracts.entities()
    for entity, rules in policy.entities.items():
        if entity not in known:
            line = _line_of(root, ["entities", entity])
            raise ConfigError(
                f"{path}:{line}: unknown entity {entity!r} (known: {', '.join(known)})"
            )
        fields = {f["name"] for f in contracts.latest(entity).payload_schema["fields"]}
        for name in rules.fields:
            if name not in fields:
                line = _line_of(root, ["entities", entity, "fields", name])
                raise ConfigError(
                    f"{path}:{line}: entity {entity!r} has no field {name!r} in its schema"
                )
    return policy
