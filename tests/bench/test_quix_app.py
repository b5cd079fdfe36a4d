"""``bench.quix.app``: the Quix peer's per-event work, against a dict standing in for Quix state."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

pytest.importorskip("quixstreams")

from bench.quix.app import handle
from contracts import decode, encode
from tests.processors.events import account_event, quote_event

pytestmark = pytest.mark.unit


class FakeState(dict[str, Any]):
    """The two calls of Quix's ``State`` the app makes."""

    def set(self, key: str, value: Any) -> None:
        self[key] = value


def _decisions(out: list[Any]) -> list[str]:
    return [orjson.loads(value)["decision"] for kind, _, value in out if kind == "audit"]


def test_an_accepted_quote_gives_one_command_and_an_audit_record_per_decision() -> None:
    state = FakeState()
    assert _decisions(handle(encode(account_event("a1")), state, 2)) == ["merged"]
    out = handle(encode(quote_event("q1", "a1")), state, 2, "p.commands.erp.create-order")
    assert [kind for kind, _, _ in out] == ["command", "audit"]
    _, key, value = out[0]
    assert key == b"a1"
    assert decode(value).payload.quote_id == "q1"  # type: ignore[attr-defined]
    record = orjson.loads(out[1][2])
    assert record["decision"] == "command_emitted"
    assert record["details"]["command"] == "p.commands.erp.create-order"
    assert out[1][1] == record["correlation_id"].encode()


def test_a_redelivered_event_id_is_dropped_and_audited_as_deduplicated() -> None:
    state = FakeState()
    handle(encode(account_event("a1")), state)
    quote = encode(quote_event("q1", "a1"))
    handle(quote, state, 4)
    seen = [v for k, v in state.items() if k.startswith("e:")]
    assert [p for _, p in seen] == [0, 4]  # when and in which partition, as the seen table
    again = handle(quote, state, 4)
    assert [kind for kind, _, _ in again] == ["audit"]
    assert orjson.loads(again[0][2])["details"] == {"by": "event_id"}
