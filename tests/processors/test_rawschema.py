"""The worker's topics decode nothing: RawSchema's events are the ones Faust's raw codec made."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.types import TP, Message

from processors.rawschema import RawSchema

pytestmark = pytest.mark.unit


def _message(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> Message:
    return Message(
        topic="canonical.quote.v1", partition=1, offset=7, timestamp=1.0, timestamp_type=0,
        headers=headers, key=key, value=value, checksum=None, tp=TP("canonical.quote.v1", 1),
    )  # fmt: skip


def _decoded(topic: Any, message: Message) -> Any:
    return asyncio.run(topic.decode(message, propagate=True))


@pytest.mark.parametrize(
    ("key", "value", "headers"),
    [
        (b"acc-1", b"\xc3\x01avro bytes \x00\xff", [("interlock.event_type", b"QuoteAccepted")]),
        (None, b"{}", []),
        (b"acc-2", None, [("a", b"1"), ("a", b"2")]),
        (b"", b"", []),
    ],
)
def test_a_raw_schema_topic_makes_the_event_fausts_raw_codec_made(
    tmp_path: Path, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
) -> None:
    app = faust.App("raw-schema", store="memory://", datadir=str(tmp_path), broker="kafka://x:1")
    faust_raw = app.topic("canonical.quote.v1", key_serializer="raw", value_serializer="raw")
    ours = app.topic("canonical.quote.v1", schema=RawSchema())
    message = _message(key, value, headers)
    expected, got = _decoded(faust_raw, message), _decoded(ours, message)
    assert type(got) is type(expected) is app.conf.Event
    assert (got.key, got.value, got.headers) == (expected.key, expected.value, expected.headers)
    assert (got.key, got.value) == (key, value)
    assert (got.message, got.app) == (message, app)
    assert got.message is message


def test_the_schema_keeps_fausts_raw_serializers_for_what_is_sent(tmp_path: Path) -> None:
    app = faust.App("raw-schema", store="memory://", datadir=str(tmp_path), broker="kafka://x:1")
    topic = app.topic("ticks", schema=RawSchema())
    assert (topic.key_serializer, topic.value_serializer) == ("raw", "raw")
    value, _headers = topic.schema.dumps_value(app, b"\x00tick", headers=None)
    assert value == b"\x00tick"


def test_the_decoder_goes_neither_through_the_registry_nor_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = faust.App("raw-schema", store="memory://", datadir=str(tmp_path), broker="kafka://x:1")

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("decoded through Faust's serializer registry")

    monkeypatch.setattr(app.serializers, "loads_key", refuse)
    monkeypatch.setattr(app.serializers, "loads_value", refuse)
    monkeypatch.setattr(app, "create_event", refuse)
    topic = app.topic("canonical.quote.v1", schema=RawSchema())  # compiles its decoder
    event = _decoded(topic, _message(b"acc-1", b"v", []))
    assert (event.key, event.value) == (b"acc-1", b"v")
