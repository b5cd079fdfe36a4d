"""Fast conversion between event models and the dicts fastavro reads and writes.

Decoding is the hot path of every consumer, so decoded data (whose types fastavro already
guarantees: ``Decimal``, aware ``datetime``, ``date``, enum symbols as ``str``) is turned into
models without re-validation, by per-model builders compiled once. Untrusted dicts (other
versions, hand-made input) go through full pydantic validation.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from contracts.errors import ValidationError
from contracts.models import EVENT_MODELS, Envelope

__all__ = ["from_avro", "to_avro"]

_new = object.__new__
# The slots of every model, set through their descriptors: a model's own __setattr__ refuses
# (frozen) and object.__setattr__ looks the descriptor up by name on every call.
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__

Builder = Callable[[dict[str, Any]], Any]
Dumper = Callable[[Any], dict[str, Any]]


def _nested_model(annotation: Any) -> tuple[type[BaseModel], bool] | None:
    """(model class, is_list) when a field holds a model, optional model or list of models."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _nested_model(args[0]) if len(args) == 1 else None
    if origin is list:
        inner = typing.get_args(annotation)[0]
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner, True
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None


def _nested_fields(cls: type[BaseModel]) -> list[tuple[str, type[BaseModel], bool]]:
    found = []
    for name, info in cls.model_fields.items():
        nested = _nested_model(info.annotation)
        if nested is not None:
            found.append((name, nested[0], nested[1]))
    return found


_builders: dict[type[BaseModel], Builder] = {}
_dumpers: dict[type[BaseModel], Dumper] = {}


def _builder(cls: type[BaseModel]) -> Builder:
    """A function that wraps a decoded dict (mutated in place) as a ``cls`` without validation."""
    cached = _builders.get(cls)
    if cached is not None:
        return cached
    nested = [(name, _builder(sub), is_list) for name, sub, is_list in _nested_fields(cls)]
    if not cls.model_config.get("frozen"):
        raise TypeError(f"{cls.__name__} is not frozen: its instances cannot share a field set")
    # One set of field names shared by every instance built: pydantic adds to an instance's
    # set only on attribute assignment, which a frozen model refuses, and ``model_copy`` copies
    # the set before it adds the updated names. A copy per instance was a twentieth of the
    # Pipeline's cost per quote.
    field_names = set(cls.model_fields)

    def build(data: dict[str, Any]) -> Any:
        for name, sub, is_list in nested:
            value = data[name]
            if value is not None:
                data[name] = list(map(sub, value)) if is_list else sub(value)
        obj = _new(cls)
        _set_dict(obj, data)
        _set_fields_set(obj, field_names)
        _set_extra(obj, None)
        _set_private(obj, None)
        return obj

    _builders[cls] = build
    return build


def _dumper(cls: type[BaseModel]) -> Dumper:
    """A function that turns a ``cls`` instance into the plain dict fastavro writes."""
    cached = _dumpers.get(cls)
    if cached is not None:
        return cached
    nested = [(name, _dumper(sub), is_list) for name, sub, is_list in _nested_fields(cls)]

    def dump(obj: Any) -> dict[str, Any]:
        data: dict[str, Any] = obj.__dict__.copy()
        for name, sub, is_list in nested:
            value = data[name]
            if value is not None:
                data[name] = [sub(item) for item in value] if is_list else sub(value)
        return data

    _dumpers[cls] = dump
    return dump


def to_avro(event: BaseModel) -> dict[str, Any]:
    """The event as the dict its Avro schema describes (a new dict; the event is untouched)."""
    return _dumper(type(event))(event)


def from_avro(entity: str, data: dict[str, Any], *, trusted: bool = False) -> Envelope:
    """Build the event model of ``entity`` from an Avro dict.

    Args:
        entity: contract name, e.g. ``"order"``.
        data: the record as fastavro reads it.
        trusted: True only for data fastavro just decoded with the reader schema the models
            mirror (the latest version); it is then wrapped without validation, and ``data``
            is reused in place. Otherwise the dict is validated by pydantic.

    Raises:
        ValidationError: ``data`` does not fit the model (only when not trusted).
    """
    try:
        cls = EVENT_MODELS[entity]
    except KeyError:
        raise ValidationError(f"unknown contract {entity!r}") from None
    if trusted:
        event: Envelope = _builder(cls)(data)
        return event
    try:
        return cls.model_validate(data)
    except Exception as exc:
        raise ValidationError(f"{entity} event does not match its model: {exc}") from exc


def event_builder(entity: str) -> Callable[[dict[str, Any]], Envelope]:
    """The trusted builder of ``entity``'s event model, for callers that cache it per schema."""
    return _builder(EVENT_MODELS[entity])


def event_dumper(entity: str) -> Dumper:
    """The dumper of ``entity``'s event model, for callers that cache it per schema."""
    return _dumper(EVENT_MODELS[entity])
