"""Poison raw records are dead-lettered with their bytes intact; the partition goes on."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from contracts import decode
from tests.conftest import consume_n
from tests.connectors.webhooks.conftest import Receiver, hubspot_company_change

pytestmark = pytest.mark.integration


def _closedwon_without_company() -> bytes:
    return json.dumps(
        [
            {
                "eventId": 5,
                "subscriptionType": "deal.propertyChange",
                "objectId": 8,
                "portalId": 99,
                "occurredAt": 1_700_000_000_000,
                "propertyName": "dealstage",
                "propertyValue": "closedwon",
            }
        ]
    ).encode()


def test_poison_raw_records_land_in_the_dlq_and_a_good_record_behind_them_is_mapped(
    receiver: Receiver,
    make_producer: Callable[..., Any],
    make_consumer: Callable[..., Any],
) -> None:
    poison = {
        b"\xff\xfe not json at all": "DECODE_FAILED",
        b"[42]": "MAPPING_FAILED",
        _closedwon_without_company(): "VALIDATION_MISSING_FIELD",
    }
    good = hubspot_company_change(31337, "Survivor AG")
    headers = [("interlock.webhook.vendor", b"hubspot"), ("interlock.webhook.source", b"hubspot")]
    producer = make_producer()
    for n, body in enumerate([*poison, good]):
        key = f"poison-{n}".encode()
        producer.produce(receiver.raw_hubspot, key=key, value=body, headers=headers)
    producer.flush(10)

    (account,) = consume_n(make_consumer(receiver.canonical("account")), 1, 30)
    assert decode(account.value()).payload.name == "Survivor AG"

    dead = consume_n(make_consumer(f"dlq.{receiver.raw_hubspot}"), 3, 30)
    assert len(dead) == 3
    for msg in dead:
        got = dict(msg.headers())
        assert got["interlock.dlq.reason"].decode() == poison[msg.value()]  # exact bytes
        assert got["interlock.dlq.original.topic"].decode() == receiver.raw_hubspot
    assert [m.key() for m in dead] == [b"poison-0", b"poison-1", b"poison-2"]
    assert all(
        receiver.instruments.registry.get_sample_value(
            "interlock_dead_letters_total",
            {"service": "webhooks-test", "topic": f"dlq.{receiver.raw_hubspot}", "reason": r},
        )
        == 1
        for r in poison.values()
    )
