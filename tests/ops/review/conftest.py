"""Fixtures of the exception desk's operator side: cases, review topics, a console server.

Cases are written with the contract's encoder (``contracts.review.encode_case``), as the
worker writes them; the worker itself is not run here.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from contracts.review import (
    Case,
    Decision,
    decode_decision,
    encode_case,
)
from interlock.broker import free_port
from interlock.kafka import make_producer
from interlock.settings import ConsoleSettings, ConsoleUserSettings, ProcessorSettings, Settings
from ops.dlq.store import read_topic
from ops.review.console.app import ConsoleState, create_app
from ops.review.store import CaseStore, DecisionSender, review_topics
from ops.review.users import Users, hash_password, hash_token
from tests.conftest import wait_for_leaders

PASSWORD = "correct horse battery"
ALICE_TOKEN = "alice-api-token-" + "0" * 32


def review_settings(settings: Settings, admin: AdminClient) -> Settings:
    """The session settings with their own ``<prefix>review.cases`` (compacted) and
    ``<prefix>review.decisions`` topics."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    copy = settings.model_copy(
        update={"processors": ProcessorSettings(topic_prefix=prefix, session_timeout_s=6.0)}
    )
    cases, decisions = review_topics(copy)
    futures = admin.create_topics(
        [
            NewTopic(cases, 2, 1, config={"cleanup.policy": "compact"}),
            NewTopic(decisions, 2, 1, config={"cleanup.policy": "delete"}),
        ]
    )
    for future in futures.values():
        future.result(timeout=30)
    wait_for_leaders(admin, [cases, decisions])
    return copy


def write_cases(settings: Settings, *cases: Case) -> None:
    """Write ``cases`` to review.cases with the contract's encoder, and wait for the acks."""
    topic, _ = review_topics(settings)
    producer = Producer({**settings.kafka.librdkafka(), "acks": "all", "linger.ms": 0})
    for case in cases:
        key, value = encode_case(case)
        producer.produce(topic, value, key)
    assert producer.flush(30) == 0


def read_decisions(settings: Settings) -> list[Decision]:
    """Every decision on review.decisions, read to the topic's true end."""
    _, topic = review_topics(settings)
    return [decode_decision(r.value) for r in read_topic(settings.kafka.librdkafka(), topic)]


def wait_for_decisions(settings: Settings, n: int, timeout: float = 20.0) -> list[Decision]:
    """Poll review.decisions until it holds ``n`` decisions (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        found = read_decisions(settings)
        if len(found) >= n or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@dataclass
class ConsoleServer:
    """A console served by a real uvicorn on 127.0.0.1, over a real case store."""

    url: str
    settings: Settings
    state: ConsoleState
    store: CaseStore

    def wait_for_case(self, case_id: str, version: int = 1, timeout: float = 20.0) -> None:
        ok = self.store.wait_for(
            lambda cases: case_id in cases and cases[case_id].version >= version, timeout
        )
        assert ok, f"case {case_id} v{version} never reached the console's store"

    def publish(self, *cases: Case) -> None:
        """Write ``cases`` to review.cases and wait until the console's store holds each."""
        write_cases(self.settings, *cases)
        for case in cases:
            self.wait_for_case(case.case_id, version=case.version)


CONSOLE_USERS = {
    "alice": ("operator", ["sales-ops", "finance"]),
    "vic": ("viewer", ["finance"]),
    "sam": ("operator", ["integration"]),
}


@pytest.fixture(scope="module")
def console_users() -> Users:
    """alice (operator of sales-ops and finance, with an API token), vic (viewer), sam
    (operator, integration); the same password for all."""
    hashed = hash_password(PASSWORD)
    return Users(
        {
            name: ConsoleUserSettings(
                role=role,
                teams=teams,
                password_hash=hashed,
                token_hash=hash_token(ALICE_TOKEN) if name == "alice" else None,
            )
            for name, (role, teams) in CONSOLE_USERS.items()
        }
    )


def serve(
    settings: Settings, users: Users, config: ConsoleSettings | None = None
) -> Generator[ConsoleServer, None, None]:
    """Run the console on a free port until the generator is closed."""
    cases_topic, decisions_topic = review_topics(settings)
    store = CaseStore(settings.kafka.librdkafka(), cases_topic, poll_s=0.05).start()
    sender = DecisionSender(
        make_producer(settings, **{"linger.ms": 0}), decisions_topic, timeout_s=10.0
    )
    state = ConsoleState(store, sender, users)
    app = create_app(state, config or ConsoleSettings(), secret_key="test-secret-" + "x" * 20)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="console", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "the console's server thread ended"
        assert time.monotonic() < deadline, "the console did not start"
        time.sleep(0.02)
    try:
        yield ConsoleServer(f"http://127.0.0.1:{port}", settings, state, store)
    finally:
        server.should_exit = True
        thread.join(10)
        store.stop()
        sender.close()


@pytest.fixture(scope="module")
def console(
    settings: Settings, admin: AdminClient, console_users: Users
) -> Iterator[ConsoleServer]:
    """One console per test module, on its own review topics."""
    yield from serve(review_settings(settings, admin), console_users)
