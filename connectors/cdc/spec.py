"""The declarative mapping files: which table becomes which canonical entity, field by field.

A mapping file is YAML with a top-level ``mappings:`` list; every file in the mappings
directory is read (``*.yaml``/``*.yml``). Validation is pydantic; errors name the file, the
mapping, the field and the line (from the YAML node marks), e.g. ``m.yaml: mapping 'orders':
field 'status': line 7: ...``. See the README section on CDC for the full reference.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from contracts.errors import ConfigError
from contracts.models import EVENT_MODELS

__all__ = [
    "DEFAULT_MAPPINGS_DIR",
    "FieldSpec",
    "LookupSpec",
    "MappingFile",
    "MappingSpec",
    "annotate_lines",
    "load_mapping_dir",
    "load_mapping_file",
    "locate",
]

DEFAULT_MAPPINGS_DIR = Path(__file__).resolve().parent.parent / "mappings" / "erp"
"""The shipped ERP mappings (``connectors/mappings/erp``)."""

Cast = Literal["str", "int", "decimal", "bool", "date", "timestamp"]
EpochUnit = Literal["s", "ms", "us", "days"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LookupSpec(_Strict):
    """A cross-reference: values looked up in an inline table or a YAML file beside the mapping.

    ``default`` applies to values not in the table; without it such a value fails the mapping
    (the change is dead-lettered), unless ``passthrough`` keeps the value as is.
    """

    table: dict[str, Any] | None = None
    file: str | None = None
    default: Any = None
    has_default: bool = False
    passthrough: bool = False

    @model_validator(mode="before")
    @classmethod
    def _note_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and "default" in data:
            data = {**data, "has_default": True}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> LookupSpec:
        if (self.table is None) == (self.file is None):
            raise ValueError("a lookup needs exactly one of `table` or `file`")
        return self


class FieldSpec(_Strict):
    """How one canonical field is computed from a row.

    Exactly one source: ``column``, ``const``, ``concat`` (columns joined by ``separator``,
    nulls skipped) or ``canonical_id`` (a deterministic id of kind ``canonical_id`` over
    ``columns``). Then, in order: ``epoch`` or ``minor_units`` (numbers to instants or
    decimals), ``map`` (enum map) or ``lookup`` (cross-reference), ``cast``. The result is
    coerced to the canonical field's type.
    """

    column: str | None = None
    const: Any = None
    has_const: bool = False
    concat: list[str] | None = None
    separator: str = " "
    canonical_id: str | None = None
    columns: list[str] | None = None
    system: str = "erp"
    epoch: EpochUnit | None = None
    minor_units: int | None = Field(default=None, ge=0, le=18)
    map: dict[str, Any] | None = None
    default: Any = None
    has_default: bool = False
    lookup: LookupSpec | None = None
    cast: Cast | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"column": data}
        if isinstance(data, dict):
            data = dict(data)
            if "const" in data:
                data["has_const"] = True
            if "default" in data:
                data["has_default"] = True
        return data

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        sources = [
            name
            for name, present in (
                ("column", self.column is not None),
                ("const", self.has_const),
                ("concat", self.concat is not None),
                ("canonical_id", self.canonical_id is not None),
            )
            if present
        ]
        if len(sources) != 1:
            raise ValueError(
                "a field needs exactly one of column, const, concat, canonical_id "
                f"(got {', '.join(sources) or 'none'})"
            )
        if self.canonical_id is not None and not self.columns:
            raise ValueError("canonical_id needs `columns` (the natural key)")
        if self.epoch is not None and self.minor_units is not None:
            raise ValueError("use either epoch or minor_units, not both")
        if self.map is not None and self.lookup is not None:
            raise ValueError("use either map or lookup, not both")
        return self

    def source_columns(self) -> list[str]:
        """The row columns this field reads."""
        if self.column is not None:
            return [self.column]
        if self.concat is not None:
            return list(self.concat)
        return list(self.columns or ())


OpName = Literal["c", "u", "d", "r"]


class MappingSpec(_Strict):
    """One table (name or glob) mapped to one canonical entity."""

    name: str
    table: str = Field(description="Table name, `schema.table`, or a glob such as `*.customers`.")
    entity: str
    topic: str | None = None
    record_id: list[str] = Field(min_length=1, description="Columns of the row's natural key.")
    key: str | None = Field(default=None, description="Payload field used as the Kafka key.")
    fields: dict[str, FieldSpec]
    events: dict[OpName, str] = Field(default_factory=dict)
    on_change: dict[str, str] = Field(
        default_factory=dict, description="column -> event type for updates that change it"
    )
    partial: bool = False
    deleted_field: str | None = None
    vendor: str | None = None

    @model_validator(mode="after")
    def _check(self) -> MappingSpec:
        if self.entity not in EVENT_MODELS:
            raise ValueError(
                f"entity {self.entity!r} is not a contract (one of {sorted(EVENT_MODELS)})"
            )
        if self.key is not None and self.key not in self.fields:
            raise ValueError(f"key {self.key!r} is not one of the mapped fields")
        return self

    @property
    def topic_name(self) -> str:
        return self.topic or f"canonical.{self.entity}.v1"

    def event_type(self, op: str) -> str:
        """The event type of ``op`` (default ``<Entity>Created|Changed|Deleted|Snapshot``)."""
        stem = self.entity.capitalize()
        default = {"c": "Created", "u": "Changed", "d": "Deleted", "r": "Snapshot"}[op]
        return self.events.get(op, f"{stem}{default}")  # type: ignore[call-overload]

    def matches(self, table: str, schema: str | None) -> bool:
        """True when this mapping covers ``table`` (optionally qualified by ``schema``)."""
        if fnmatchcase(table, self.table):
            return True
        return schema is not None and fnmatchcase(f"{schema}.{table}", self.table)


class MappingFile(_Strict):
    """The content of one mapping file."""

    mappings: list[MappingSpec]


def _node_at(root: yaml.Node | None, loc: Sequence[str | int]) -> yaml.Node | None:
    """The deepest YAML node on the path ``loc`` (keys of mappings, indexes of sequences)."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            child = next(
                (v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part),
                None,
            )
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if 0 <= part < len(node.value) else None
        else:
            child = None
        if child is None:
            break
        node = child
    return node


def _line(root: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    node = _node_at(root, loc)
    return None if node is None else node.start_mark.line + 1


def _compose(path: Path) -> yaml.Node | None:
    try:
        return yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        return None


def _describe(exc: PydanticValidationError, path: Path, raw: Any, root: yaml.Node | None) -> str:
    lines = []
    for err in exc.errors():
        full = [p for p in err["loc"] if not str(p).startswith("function-")]
        loc = list(full)
        line = _line(root, full)
        where = str(path)
        if len(loc) >= 2 and loc[0] == "mappings" and isinstance(loc[1], int):
            index = loc[1]
            try:
                name = raw["mappings"][index].get("name") or f"#{index}"
            except (KeyError, IndexError, TypeError, AttributeError):
                name = f"#{index}"
            where += f": mapping {name!r}"
            loc = loc[2:]
        if len(loc) >= 2 and loc[0] == "fields":
            where += f": field {loc[1]!r}"
            loc = loc[2:]
        if line is not None:
            where += f": line {line}"
        rest = ".".join(str(p) for p in loc)
        lines.append(f"{where}{': ' + rest if rest else ''}: {err['msg']}")
    return "invalid mapping file:\n  " + "\n  ".join(lines)


def locate(path: Path, mapping: str, field: str | None = None) -> int | None:
    """The line of mapping ``mapping`` (or of its field ``field``) in ``path``, if found."""
    root = _compose(path)
    if not isinstance(root, yaml.MappingNode):
        return None
    specs = _node_at(root, ["mappings"])
    if not isinstance(specs, yaml.SequenceNode):
        return None
    for index, item in enumerate(specs.value):
        name = _node_at(item, ["name"])
        if isinstance(name, yaml.ScalarNode) and name.value == mapping:
            loc: list[str | int] = ["mappings", index]
            if field is not None:
                fields = _node_at(item, ["fields"])
                key = next(
                    (
                        k
                        for k, _ in getattr(fields, "value", ())
                        if isinstance(k, yaml.ScalarNode) and k.value == field
                    ),
                    None,
                )
                if key is not None:
                    return int(key.start_mark.line) + 1
                loc.append("fields")
            return _line(root, loc)
    return None


_WHERE = re.compile(
    r"(?P<path>[^\s:][^:\n]*?): mapping '(?P<name>[^'\n]+)'(?:: field '(?P<field>[^'\n]+)')?"
)


def annotate_lines(message: str) -> str:
    """``message`` with ``: line N`` after every ``<file>: mapping 'm'[: field 'f']`` it names.

    For errors raised after validation (compiling a mapping against its contract), whose
    messages name the file, mapping and field but not the line.
    """

    def with_line(match: re.Match[str]) -> str:
        path = Path(match["path"])
        line = locate(path, match["name"], match["field"]) if path.is_file() else None
        if line is None:
            return match[0]
        return f"{match[0]}: line {line}"

    return _WHERE.sub(with_line, message)


def load_mapping_file(path: Path) -> MappingFile:
    """Parse and validate one mapping file.

    Raises:
        ConfigError: unreadable YAML or an invalid mapping; the message names the file, the
            mapping, the field and the line.
    """
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read mapping file: {exc}") from exc
    try:
        return MappingFile.model_validate(raw)
    except PydanticValidationError as exc:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        raise ConfigError(_describe(exc, path, raw, root)) from None


def load_mapping_dir(directory: Path | None = None) -> list[tuple[Path, MappingSpec]]:
    """Every mapping of every ``*.yaml``/``*.yml`` file in ``directory`` (sorted by file name).

    Raises:
        ConfigError: the directory is missing, holds no mapping, or a file is invalid.
    """
    root = directory or DEFAULT_MAPPINGS_DIR
    if not root.is_dir():
        raise ConfigError(f"{root}: mappings directory does not exist")
    found: list[tuple[Path, MappingSpec]] = []
    names: dict[str, Path] = {}
    for path in sorted([*root.glob("*.yaml"), *root.glob("*.yml")]):
        for spec in load_mapping_file(path).mappings:
            if spec.name in names:
                raise ConfigError(
                    annotate_lines(
                        f"{path}: mapping {spec.name!r}: name already used in {names[spec.name]}"
                    )
                )
            names[spec.name] = path
            found.append((path, spec))
    if not found:
        raise ConfigError(f"{root}: no mappings found (*.yaml with a `mappings:` list)")
    return found
