"""The contracts shipped with Interlock: every entity, every version, parsed once.

Each ``avro/<entity>/v<N>.avsc`` holds one payload record; the loader composes it with the
envelope (``avro/envelope/v<M>.avsc``, chosen by the payload's ``interlock.envelope``
attribute) into the complete event schema ``interlock.canonical.<Payload>Event``. That composed
schema is what is written, fingerprinted and registered.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, cast

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from contracts.errors import ConfigError

__all__ = [
    "AVRO_DIR",
    "CONTRACTS_DIR",
    "NAMESPACE",
    "ContractRegistry",
    "ContractVersion",
    "compose_event_schema",
    "default_registry",
    "parsing_fingerprint",
]

CONTRACTS_DIR = Path(__file__).parent
AVRO_DIR = CONTRACTS_DIR / "avro"
NAMESPACE = "interlock.canonical"
ENVELOPE_ATTR = "interlock.envelope"
_VERSION_FILE = re.compile(r"^v([1-9][0-9]*)\.avsc$")


def parsing_fingerprint(schema: Any) -> bytes:
    """CRC-64-AVRO fingerprint of a schema's parsing canonical form, 8 bytes little-endian.

    This is the layout the Avro single-object encoding puts after ``C3 01``.
    """
    parsed = parse_schema(schema, _write_hint=False, _force=True)
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


def compose_event_schema(envelope: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The full event schema: the envelope's fields followed by ``payload`` of the entity record."""
    payload = {k: v for k, v in payload.items() if k != ENVELOPE_ATTR}
    payload.setdefault("namespace", NAMESPACE)
    name = str(payload["name"]).rsplit(".", 1)[-1]
    return {
        "type": "record",
        "name": f"{name}Event",
        "namespace": payload["namespace"],
        "doc": f"Canonical {name} event: envelope plus the {name} payload.",
        "fields": [
            *envelope["fields"],
            {"name": "payload", "type": payload, "doc": payload.get("doc", "")},
        ],
    }


@dataclass(frozen=True)
class ContractVersion:
    """One version of one entity's contract, parsed and fingerprinted once."""

    entity: str
    version: int
    path: Path
    schema: dict[str, Any]
    """The composed event schema as JSON data (what is registered and documented)."""
    parsed: dict[str, Any] = field(repr=False, compare=False)
    """The fastavro-parsed schema, ready for schemaless_writer/reader."""
    canonical_form: str = field(repr=False)
    fingerprint: bytes = field(repr=False)
    """CRC-64-AVRO of the parsing canonical form, 8 bytes little-endian."""

    @property
    def record_name(self) -> str:
        """Full name of the event record, e.g. ``interlock.canonical.OrderEvent``."""
        return f"{self.schema['namespace']}.{self.schema['name']}"

    @property
    def payload_schema(self) -> dict[str, Any]:
        """The entity's payload record (the last field of the event)."""
        payload: dict[str, Any] = self.schema["fields"][-1]["type"]
        return payload

    @property
    def schema_str(self) -> str:
        """The composed schema as compact JSON, as registered in a Schema Registry."""
        return json.dumps(self.schema, separators=(",", ":"))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read schema: {exc}") from exc
    if not isinstance(data, dict) or data.get("type") != "record":
        raise ConfigError(f"{path}: a contract must be an Avro record schema")
    return data


def _versions_in(directory: Path) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for path in sorted(directory.glob("*.avsc")):
        match = _VERSION_FILE.match(path.name)
        if match is None:
            raise ConfigError(f"{path}: contract files are named v<N>.avsc")
        found[int(match.group(1))] = path
    return found


class ContractRegistry:
    """Entity → version → parsed schema and fingerprint, for every ``.avsc`` in a contracts dir."""

    def __init__(self, versions: list[ContractVersion]) -> None:
        self._by_entity: dict[str, dict[int, ContractVersion]] = {}
        self._by_fingerprint: dict[bytes, ContractVersion] = {}
        self._by_record: dict[str, str] = {}
        for cv in sorted(versions, key=lambda v: (v.entity, v.version)):
            self._by_entity.setdefault(cv.entity, {})[cv.version] = cv
            # Versions differing only in docs/defaults share a fingerprint: the newest wins.
            self._by_fingerprint[cv.fingerprint] = cv
            self._by_record[cv.record_name] = cv.entity

    @classmethod
    def load(cls, contracts_dir: Path | str = CONTRACTS_DIR) -> ContractRegistry:
        """Load ``<contracts_dir>/avro``; raise ConfigError naming the file on any fault."""
        avro_dir = Path(contracts_dir) / "avro"
        if not avro_dir.is_dir():
            raise ConfigError(f"{avro_dir}: no such contracts directory")
        envelopes = {n: _read_json(p) for n, p in _versions_in(avro_dir / "envelope").items()}
        versions: list[ContractVersion] = []
        for entity_dir in sorted(p for p in avro_dir.iterdir() if p.is_dir()):
            if entity_dir.name == "envelope":
                continue
            for version, path in _versions_in(entity_dir).items():
                payload = _read_json(path)
                env_version = payload.get(ENVELOPE_ATTR, 1)
                if env_version not in envelopes:
                    raise ConfigError(f"{path}: unknown envelope version {env_version!r}")
                versions.append(
                    _build(entity_dir.name, version, path, envelopes[env_version], payload)
                )
        if not versions:
            raise ConfigError(f"{avro_dir}: no contracts found")
        return cls(versions)

    def entities(self) -> list[str]:
        """Every entity name, sorted."""
        return sorted(self._by_entity)

    def versions(self, entity: str) -> list[int]:
        """Every version of ``entity``, ascending."""
        return sorted(self._entity(entity))

    def get(self, entity: str, version: int | None = None) -> ContractVersion:
        """One version of ``entity``; the latest when ``version`` is None."""
        by_version = self._entity(entity)
        if version is None:
            return by_version[max(by_version)]
        try:
            return by_version[version]
        except KeyError:
            raise ConfigError(f"contract {entity!r} has no version {version}") from None

    def latest(self, entity: str) -> ContractVersion:
        """The newest version of ``entity``."""
        return self.get(entity)

    def all(self) -> list[ContractVersion]:
        """Every version of every entity, by entity then version."""
        return [self._by_entity[e][v] for e in self.entities() for v in self.versions(e)]

    def by_fingerprint(self, fp: bytes) -> ContractVersion | None:
        """The version whose CRC-64-AVRO fingerprint is ``fp``, if shipped."""
        return self._by_fingerprint.get(fp)

    def entity_of_record(self, record_name: str) -> str | None:
        """The entity whose event record is named ``record_name`` (full name)."""
        return self._by_record.get(record_name)

    def _entity(self, entity: str) -> dict[int, ContractVersion]:
        try:
            return self._by_entity[entity]
        except KeyError:
            known = ", ".join(self.entities())
            raise ConfigError(f"unknown contract {entity!r} (known: {known})") from None


def _build(
    entity: str, version: int, path: Path, envelope: dict[str, Any], payload: dict[str, Any]
) -> ContractVersion:
    schema = compose_event_schema(envelope, payload)
    try:
        parsed = cast(dict[str, Any], parse_schema(schema, _force=True))
        canonical = to_parsing_canonical_form(parse_schema(schema, _write_hint=False, _force=True))
    except Exception as exc:
        raise ConfigError(f"{path}: invalid Avro schema: {exc}") from exc
    return ContractVersion(
        entity=entity,
        version=version,
        path=path,
        schema=schema,
        parsed=parsed,
        canonical_form=canonical,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
    )


@cache
def default_registry() -> ContractRegistry:
    """The contracts shipped in this package, loaded once per process."""
    return ContractRegistry.load(CONTRACTS_DIR)
