"""Models mirror the Avro contracts field for field, and the fast decode path builds real models."""

from __future__ import annotations

import types
import typing
from copy import deepcopy
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import AwareDatetime, BaseModel
from pydantic import ValidationError as PydanticValidationError

from contracts import (
    EVENT_MODELS,
    OrderEvent,
    default_registry,
    deterministic_event_id,
    from_avro,
    to_avro,
)
from contracts.conversion import _builder
from contracts.errors import ValidationError
from tests.contracts.samples import sample_events

pytestmark = pytest.mark.unit

PRIMITIVES: dict[str, type] = {
    "string": str, "int": int, "long": int, "boolean": bool, "double": float, "float": float,
    "bytes": bytes,
}  # fmt: skip
LOGICAL: dict[str, type] = {
    "decimal": Decimal, "timestamp-millis": datetime, "timestamp-micros": datetime, "date": date,
}  # fmt: skip


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        assert len(args) == 1, f"only T | None unions are used, got {annotation}"
        return args[0], True
    return annotation, False


def _assert_matches(avro_type: Any, annotation: Any, where: str, named: dict[str, Any]) -> None:
    if isinstance(avro_type, list):
        assert avro_type[0] == "null", f"{where}: only [null, T] unions"
        assert len(avro_type) == 2, f"{where}: only [null, T] unions"
        inner, optional = _strip_optional(annotation)
        assert optional, f"{where}: schema is nullable, model is not"
        _assert_matches(avro_type[1], inner, where, named)
        return
    assert _strip_optional(annotation)[1] is False, f"{where}: model is nullable, schema is not"
    if isinstance(avro_type, str) and avro_type in named:
        avro_type = named[avro_type]
    if isinstance(avro_type, str):
        assert annotation is PRIMITIVES[avro_type], f"{where}: {avro_type} vs {annotation}"
        return
    if "logicalType" in avro_type:
        expected = LOGICAL[avro_type["logicalType"]]
        if expected is datetime:
            assert annotation is AwareDatetime, f"{where}: instants must be tz-aware"
        else:
            assert annotation is expected, f"{where}: {avro_type} vs {annotation}"
        return
    kind = avro_type["type"]
    if kind == "array":
        assert typing.get_origin(annotation) is list, f"{where}: array vs {annotation}"
        _assert_matches(avro_type["items"], typing.get_args(annotation)[0], f"{where}[]", named)
    elif kind == "enum":
        named[avro_type["name"]] = avro_type
        assert typing.get_origin(annotation) is typing.Literal, f"{where}: enum vs {annotation}"
        assert list(typing.get_args(annotation)) == avro_type["symbols"], f"{where}: symbols"
        assert avro_type.get("default") in avro_type["symbols"], f"{where}: enum needs a default"
    elif kind == "record":
        named[avro_type["name"]] = avro_type
        assert isinstance(annotation, type), where
        assert issubclass(annotation, BaseModel), where
        _assert_record(avro_type, annotation, where, named)
    else:
        _assert_matches(kind, annotation, where, named)


def _assert_record(schema: dict[str, Any], model: type[BaseModel], where: str,
                   named: dict[str, Any]) -> None:  # fmt: skip
    schema_fields = [f["name"] for f in schema["fields"]]
    assert schema_fields == list(model.model_fields), f"{where}: field names or order differ"
    for field in schema["fields"]:
        info = model.model_fields[field["name"]]
        here = f"{where}.{field['name']}"
        _assert_matches(field["type"], info.annotation, here, named)
        if "default" in field:
            assert not info.is_required(), f"{here}: schema has a default, model requires it"
            assert info.get_default(call_default_factory=True) == field["default"], here
        elif field["name"] not in ("entity", "schema_version", "ingested_at"):
            assert info.is_required(), f"{here}: schema requires it, model has a default"


@pytest.mark.parametrize("entity", sorted(EVENT_MODELS))
def test_model_mirrors_latest_schema(entity: str) -> None:
    model = EVENT_MODELS[entity]
    contract = default_registry().get(entity, model.SCHEMA_VERSION)
    _assert_record(contract.schema, model, entity, {})


def test_every_contract_has_a_model() -> None:
    assert sorted(EVENT_MODELS) == default_registry().entities()
    for entity, model in EVENT_MODELS.items():
        assert default_registry().latest(entity).version == model.SCHEMA_VERSION


@pytest.mark.parametrize("entity", sorted(EVENT_MODELS))
def test_trusted_build_equals_validated_model(entity: str) -> None:
    event = sample_events()[entity]
    fast = from_avro(entity, to_avro(event), trusted=True)
    assert fast == event
    assert type(fast) is type(event)
    assert fast.model_dump() == event.model_dump()
    assert from_avro(entity, to_avro(event)) == event


def test_trusted_builds_share_a_field_set_that_no_copy_or_update_changes() -> None:
    data = to_avro(sample_events()["order"])
    one, two = (from_avro("order", deepcopy(data), trusted=True) for _ in range(2))
    shared = one.payload.model_fields_set  # type: ignore[attr-defined]
    assert shared is two.payload.model_fields_set  # type: ignore[attr-defined]
    assert shared == set(type(one.payload).model_fields)  # type: ignore[attr-defined]
    before = set(shared)
    updated = one.payload.model_copy(update={"status_reason": "late"})  # type: ignore[attr-defined]
    assert updated.status_reason == "late"
    assert updated.model_fields_set is not shared
    with pytest.raises(PydanticValidationError):  # frozen: nothing adds to the shared set
        one.payload.status_reason = "late"  # type: ignore[attr-defined,misc]
    assert shared == before
    assert two.payload.model_dump(exclude_unset=True) == two.payload.model_dump()  # type: ignore[attr-defined]


def test_a_model_that_is_not_frozen_gets_no_trusted_builder() -> None:
    class Loose(BaseModel):
        name: str

    with pytest.raises(TypeError, match="not frozen"):
        _builder(Loose)


def test_to_avro_leaves_event_untouched_and_is_plain_data() -> None:
    event = sample_events()["order"]
    data = to_avro(event)
    assert isinstance(data["payload"], dict)
    assert isinstance(data["payload"]["lines"][0], dict)
    data["payload"]["lines"].clear()
    assert len(event.payload.lines) == 3  # type: ignore[attr-defined]


def test_untrusted_bad_data_raises_validation_error() -> None:
    data = to_avro(sample_events()["order"])
    data["payload"]["status"] = "TELEPORTED"
    with pytest.raises(ValidationError, match="status"):
        from_avro("order", data)


def test_model_defaults_entity_and_version() -> None:
    event = sample_events()["order"]
    assert (event.entity, event.schema_version) == ("order", 1)
    assert isinstance(event, OrderEvent)


def test_deterministic_event_id_is_stable_and_unambiguous() -> None:
    first = deterministic_event_id("crm", "quote-7", "3")
    assert first == deterministic_event_id("crm", "quote-7", "3")
    assert first != deterministic_event_id("crm", "quote-7", "4")
    assert deterministic_event_id("a:b", "c") != deterministic_event_id("a", "b:c")
    assert (
        first == "fd06c4e3-2c4b-5cc9-9d97-5dc2bb15d611"
    )  # pinned: changing it breaks dedup of replays
