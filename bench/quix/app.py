"""Quote → order on Quix Streams, doing the Pipeline's work per event in Quix state.

The same pure domain functions as the processors (``merge_account``, ``decide_quote``,
``fold_order_state``, the commercial policy's ``breaches``) and the same decision records
(``processors.audit``), in one stateful Quix dataframe over the account and quote topics
(co-partitioned, keyed by account id), with state in Quix's RocksDB store (changelogged).
Per account key, the state holds:

- ``e:<event id>``: when the event was handled and its partition, as the Pipeline's ``seen``
  table does; an event id seen within the dedup TTL is dropped (audited ``deduplicated``);
- ``account``: the merged account (ownership policy), and whether it has ordered yet;
- ``q:<quote id>``: the quote's order state, so a revision already ordered is suppressed;
- ``c:<case id>``: a quote held by the commercial policy (the exception desk's case).

Every decision is produced to the audit topic as the Pipeline produces it (same record, same
key: the correlation id); order commands go to the create-order topic keyed by account id.
Prints ``ready`` once assigned.

    python -m bench.quix.app BOOTSTRAP PREFIX STATE_DIR
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any, Literal

from quixstreams import Application, State, message_context
from quixstreams.models import SerializationContext, Serializer

from contracts import decode, encode
from contracts.models import AccountEvent, Envelope, QuoteEvent
from contracts.ownership import load_ownership
from contracts.policy import load_policy
from contracts.review import case_id_for
from interlock.settings import load_settings
from processors.audit import Decision, decision_record, encode_record
from processors.domain.accounts import merge_account
from processors.domain.quotes import decide_quote, fold_order_state
from processors.topic_names import ProcessorTopics

__all__ = ["Output", "build_app", "handle"]

POLICY = load_ownership()
COMMERCIAL = load_policy()
DEDUP_TTL_S = load_settings().processors.dedup_ttl_s

Output = tuple[Literal["command", "audit"], bytes | None, bytes]
"""Where a record goes, its key and its value."""


def _audit(decision: Decision, event: Envelope, **kwargs: Any) -> Output:
    key, value = encode_record(decision_record(decision, event, at=time.time(), **kwargs))
    return ("audit", key, value)


def _seen(state: State, event_id: str) -> bool:
    seen = state.get(f"e:{event_id}")
    return seen is not None and time.time() - float(seen[0]) < DEDUP_TTL_S


def _mark_seen(state: State, event_id: str, partition: int) -> None:
    state.set(f"e:{event_id}", [time.time(), partition])


def handle(
    value: bytes, state: State, partition: int = 0, command_topic: str = "create-order"
) -> list[Output]:
    """One input record against its account's state: the records to produce."""
    event = decode(value)
    if isinstance(event, AccountEvent | QuoteEvent) and _seen(state, event.event_id):
        return [_audit("deduplicated", event, details={"by": "event_id"})]
    if isinstance(event, AccountEvent):
        return _on_account(event, state, partition)
    if isinstance(event, QuoteEvent):
        return _on_quote(event, state, partition, command_topic)
    return []


def _on_account(event: AccountEvent, state: State, partition: int) -> list[Output]:
    current = state.get("account")
    result = merge_account(current, event, POLICY)
    out: list[Output] = []
    if result.violations:
        kind: Decision = "rejected" if result.rejected else "stripped"
        fields = [v.field for v in result.violations]
        violations = [str(v) for v in result.violations]
        out.append(_audit(kind, event, details={"violations": violations, "fields": fields}))
    if result.rejected:
        return out
    merged = dict(result.state)
    if current and current.get("ordered"):
        merged["ordered"] = True
    state.set("account", merged)
    _mark_seen(state, event.event_id, partition)
    applied = {"applied": sorted(result.applied), "stripped": [v.field for v in result.violations]}
    out.append(_audit("merged", event, ids={"account_id": event.payload.account_id},
                      details=applied))  # fmt: skip
    return out


def _on_quote(event: QuoteEvent, state: State, partition: int, command_topic: str) -> list[Output]:
    quote = event.payload
    key = f"q:{quote.quote_id}"
    current = state.get(key)
    account = state.get("account")
    decision = decide_quote(event, current, account)
    ids = {"quote_id": quote.quote_id, "revision": quote.revision, "account_id": quote.account_id}
    if decision.command is None or decision.kind != "create-order":
        if decision.action in ("duplicate", "stale"):
            by = f"quote_id+revision ({decision.action})"
            return [_audit("deduplicated", event, details={"by": by})]
        if decision.action == "park":  # no parking lot here: audited, never released
            return [_audit("parked", event, ids=ids)]
        _mark_seen(state, event.event_id, partition)
        if decision.action == "invalid":
            codes = {"codes": [i.code for i in decision.issues]}
            return [_audit("rejected", event, ids=ids, details=codes)]
        details = {"status": quote.status, "action": decision.action}
        return [_audit("ignored", event, ids=ids, details=details)]
    case_id = case_id_for("policy", f"{quote.quote_id}|{quote.revision}")
    case = state.get(f"c:{case_id}")
    if case is None or case != "approved":
        breaches = COMMERCIAL.breaches(quote, first_order=not (account or {}).get("ordered"))
        if breaches:
            state.set(f"c:{case_id}", "open")
            _mark_seen(state, event.event_id, partition)
            limits = {"limits": [b.limit for b in breaches]}
            return [_audit("held_for_approval", event, ids=ids, details=limits)]
    command = decision.command
    state.set(key, {**fold_order_state(current, command), "partition": partition})
    if account is not None and not account.get("ordered"):
        state.set("account", {**account, "ordered": True})
    _mark_seen(state, event.event_id, partition)
    order_ids = {"quote_id": quote.quote_id, "order_id": command.payload.order_id}
    sent: dict[str, Any] = {"command": command_topic, "event_type": command.event_type}
    return [
        ("command", quote.account_id.encode(), encode(command)),
        _audit("command_emitted", command, ids=order_ids, details=sent),
    ]


class _ValueOf(Serializer):
    """Serializes an :data:`Output` as its value (its key is set by ``to_topic``)."""

    def __call__(self, value: Any, ctx: SerializationContext) -> bytes:
        return bytes(value[2])


def build_app(bootstrap: str, prefix: str, state_dir: str) -> tuple[Application, Any]:
    """The Quix application and its stream of outputs (each to its topic)."""
    topics = ProcessorTopics(prefix)
    app = Application(
        broker_address=bootstrap,
        consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=state_dir,
        commit_interval=1.0,
        consumer_extra_config={"session.timeout.ms": 6000, "fetch.max.bytes": 16 * 2**20},
        producer_extra_config={"linger.ms": load_settings().processors.linger_ms},  # the worker's
        auto_create_topics=True,
    )
    serde: dict[str, Any] = {"key_deserializer": "bytes", "value_deserializer": "bytes"}
    accounts = app.dataframe(app.topic(topics.account, **serde))
    quotes = app.dataframe(app.topic(topics.quote, **serde))
    out: dict[str, Any] = {"key_serializer": "bytes", "value_serializer": _ValueOf()}
    orders = app.topic(topics.create_order, **out)
    audit = app.topic(topics.audit, **out)

    def apply(value: bytes, state: State) -> list[Output]:
        return handle(value, state, message_context().partition, topics.create_order)

    sdf = accounts.concat(quotes).apply(apply, stateful=True, expand=True)
    # Quix keeps the input's timestamp on outputs; stamp the production time instead, as the
    # other processors' producers do, so append times measure the processing.
    sdf = sdf.set_timestamp(lambda _value, _key, _ts, _headers: int(time.time() * 1000))
    sdf.to_topic(lambda o, _k, _ts, _h: orders if o[0] == "command" else audit, key=lambda o: o[1])
    return app, sdf


def main(bootstrap: str, prefix: str, state_dir: str) -> None:
    app, _ = build_app(bootstrap, prefix, state_dir)
    on_assign = app._on_assign  # Quix has no public assignment hook; announce readiness

    def announce(consumer: Any, partitions: Any) -> None:
        on_assign(consumer, partitions)
        print("ready", flush=True)

    app._on_assign = announce  # type: ignore[method-assign,assignment]
    app.run()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
