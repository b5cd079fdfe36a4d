"""Replay end to end: JOIN_TIMEOUT quotes become orders once their account exists, exactly once;
and ``--rate`` paces the sends.

The quote→order stage here is a stand-in written for this test (the guarded stage loop with a
handler that joins quotes to known accounts and dedups by event_id), not the processors' agent.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from contracts import QuoteEvent, decode, encode
from contracts.errors import InterlockError, Reason
from interlock.kafka import make_consumer, make_producer
from interlock.records import RawRecord
from interlock.retry import FailureRouter
from interlock.settings import Settings
from interlock.stage import StageLoop
from ops.dlq.store import read_topic
from tests.contracts.samples import sample_events
from tests.ops.dlq.conftest import DlqRun, write_dead_letters

pytestmark = pytest.mark.integration


class QuoteToOrder:
    """Stand-in quote→order stage: accounts from one topic, quotes from another."""

    def __init__(self, producer: object, accounts: str, commands: str) -> None:
        self.producer = producer
        self.accounts_topic = accounts
        self.commands = commands
        self.accounts: set[str] = set()
        self.seen: set[str] = set()
        self.duplicates = 0

    def __call__(self, record: RawRecord) -> None:
        if record.topic == self.accounts_topic:
            self.accounts.add((record.key or b"").decode())
            return
        event = decode(record.value or b"")
        assert isinstance(event, QuoteEvent)
        if event.payload.account_id not in self.accounts:
            raise InterlockError(
                f"account {event.payload.account_id} not known", reason=Reason.JOIN_TIMEOUT
            )
        if event.event_id in self.seen:
            self.duplicates += 1
            return
        self.seen.add(event.event_id)
        command = {
            "command_id": f"create-order:{event.event_id}",
            "quote_id": event.payload.quote_id,
        }
        self.producer.produce(  # type: ignore[attr-defined]
            self.commands, key=event.payload.account_id.encode(), value=json.dumps(command).encode()
        )


def quote(quote_id: str, account_id: str) -> bytes:
    event = sample_events()["quote"]
    payload = event.payload.model_copy(update={"quote_id": quote_id, "account_id": account_id})
    return encode(event.model_copy(update={"event_id": f"ev-{quote_id}", "payload": payload}))


def test_join_timeout_quotes_replayed_after_their_account_yield_one_order_each(
    dlq_settings: Settings,
    make_topic: Callable[..., str],
    make_group: Callable[[], str],
    dlq: DlqRun,
) -> None:
    settings = dlq_settings
    quotes = make_topic(2, prefix="canonical.quote-test")
    make_topic(2, name=f"dlq.{quotes}")
    accounts = make_topic(2, prefix="canonical.account-test")
    commands = make_topic(1, prefix="commands.erp.create-order-test")
    producer = make_producer(settings)
    producer.produce(accounts, key=b"acct-1", value=b"account")
    producer.flush(10)
    quotes_later: list[tuple[bytes, bytes]] = []
    for i in range(2):
        quotes_later.append((b"acct-1", quote(f"q-known-{i}", "acct-1")))
    for i in range(5):
        quotes_later.append((b"acct-9", quote(f"q-early-{i}", "acct-9")))

    out = make_producer(settings)
    stage = QuoteToOrder(out, accounts, commands)
    consumer = make_consumer(settings, make_group())
    consumer.assign(
        [TopicPartition(t, p, OFFSET_BEGINNING) for t in (accounts, quotes) for p in (0, 1)]
    )
    loop = StageLoop(
        consumer,
        stage,
        FailureRouter(out, "quote-to-order", []),
        poll_timeout=0.2,
        on_batch_end=lambda: out.flush(10),
    )

    def run_until(handled: int) -> None:
        deadline = time.monotonic() + 20
        while loop.stats.handled < handled and time.monotonic() < deadline:
            loop.run_once()
        assert loop.stats.handled == handled

    def orders() -> list[str]:
        return [
            json.loads(r.value or b"")["quote_id"]
            for r in read_topic(settings.kafka.librdkafka(), commands)
        ]

    run_until(1)  # acct-1 is known before any quote arrives
    for key, value in quotes_later:
        producer.produce(quotes, key=key, value=value)
    producer.flush(10)
    run_until(8)
    assert sorted(orders()) == ["q-known-0", "q-known-1"]
    assert loop.stats.dead_lettered == 5
    producer.produce(accounts, key=b"acct-9", value=b"account")
    producer.flush(10)
    run_until(9)

    first = dlq("replay", quotes, "--reason", "JOIN_TIMEOUT", "--yes")
    assert first.exit_code == 0, first.output
    assert "replayed 5 record(s)" in first.stdout
    run_until(14)
    made = orders()
    assert sorted(made) == sorted(["q-known-0", "q-known-1"] + [f"q-early-{i}" for i in range(5)])
    assert len(made) == len(set(made))

    again = dlq("replay", quotes, "--reason", "JOIN_TIMEOUT", "--yes")
    assert again.exit_code == 0, again.output
    assert "0 dead letter(s)" in again.stdout
    assert "5 already replayed, skipped" in again.stdout
    forced = dlq("replay", quotes, "--reason", "JOIN_TIMEOUT", "--yes", "--again")
    assert "replayed 5 record(s)" in forced.stdout
    run_until(19)
    assert stage.duplicates == 5
    assert sorted(orders()) == sorted(made)
    consumer.close()

    audit = read_topic(settings.kafka.librdkafka(), settings.dlq.audit_topic)
    assert len(audit) == 10
    docs = [json.loads(r.value or b"") for r in audit]
    assert {d["target_topic"] for d in docs} == {quotes}
    assert sorted(d["count"] for d in docs) == [1] * 5 + [2] * 5
    assert all(
        r.key == f"dlq.{quotes}/{d['dlq_partition']}/{d['dlq_offset']}".encode()
        for r, d in zip(audit, docs, strict=True)
    )


def test_rate_200_per_second_paces_2000_replays(
    dlq_settings: Settings, make_topic: Callable[..., str], dlq: DlqRun
) -> None:
    source = make_topic(1, prefix="commands.rate-test")
    make_topic(1, name=f"dlq.{source}")
    target = make_topic(1, prefix="commands.rate-target")
    write_dead_letters(
        dlq_settings, source, [(b"k", b"v%d" % i, Reason.SINK_REJECTED) for i in range(2000)]
    )
    result = dlq("replay", source, "--to", target, "--rate", "200/s", "--yes")
    assert result.exit_code == 0, result.output
    match = re.search(r"replayed 2000 record\(s\) in ([\d.]+) s", result.stdout)
    assert match, result.stdout
    elapsed = float(match.group(1))
    assert 9.0 <= elapsed <= 11.1  # the rate limiter's contract, not a speed check
    replayed = read_topic(dlq_settings.kafka.librdkafka(), target)
    assert [r.value for r in replayed] == [b"v%d" % i for i in range(2000)]
    assert all(dict(r.headers)[b"interlock.replay.count".decode()] == b"1" for r in replayed)
    assert not any(k.startswith("interlock.dlq.") for r in replayed for k, _ in r.headers)
