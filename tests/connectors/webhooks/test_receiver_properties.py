"""Property, over real HTTP: no request gets a 5xx, and only validly signed ones land.

Requests come from :mod:`tests.connectors.webhooks.hostile` driven by hypothesis: signed and
unsigned (wrong secret, garbage, missing, stale), random and deep bodies, other encodings,
overlong ids and headers, on every route.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator

import httpx
import hypothesis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from interlock.settings import Settings
from tests.conftest import consume_n, end_offsets
from tests.connectors.webhooks.conftest import Receiver, start_receiver, webhook_settings
from tests.connectors.webhooks.hostile import hostile_request

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver(settings: Settings, make_topic: Callable[..., str]) -> Iterator[Receiver]:
    roomy = webhook_settings(max_body_bytes=65_536)
    yield from start_receiver(settings, make_topic, mapper=False, webhooks=roomy)


def test_no_request_gets_a_5xx_and_only_validly_signed_ones_land(
    receiver: Receiver, settings: Settings, make_consumer: Callable[..., object]
) -> None:
    accepted: list[str] = []
    statuses: dict[int, int] = {}
    with httpx.Client(timeout=30) as client:

        @given(st.randoms(use_true_random=False))
        @hypothesis.settings(
            max_examples=400,
            deadline=None,
            database=None,
            suppress_health_check=[hypothesis.HealthCheck.too_slow],
        )
        def answers_without_5xx(rng: random.Random) -> None:
            request = hostile_request(rng, receiver.url)
            answer = client.post(
                receiver.url + request.path, content=request.body, headers=request.headers
            )
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            assert answer.status_code < 500, (request, answer.text)
            if answer.status_code == 200:
                assert request.signed, request
                accepted.append(hashlib.sha256(request.body).hexdigest())
            elif answer.headers.get("content-type") == "application/json":
                assert set(answer.json()) == {"error", "reason"}

        answers_without_5xx()

    assert statuses.get(200, 0) > 0, statuses  # the generator does make good requests
    assert {200, 400, 401, 431} <= set(statuses), statuses
    conf = {"bootstrap.servers": settings.kafka.bootstrap_servers}
    raw = [(receiver.raw_hubspot, 0), (receiver.raw_standard, 0)]
    assert sum(end_offsets(conf, raw).values()) == len(accepted)
    records = consume_n(make_consumer(receiver.raw_hubspot, receiver.raw_standard), len(accepted))  # type: ignore[arg-type]
    landed = sorted(hashlib.sha256(r.value()).hexdigest() for r in records)  # type: ignore[attr-defined]
    assert landed == sorted(accepted)
