"""Quote → order on Quix Streams: decode, merge the account, validate and dedup, emit the order.

The same pure domain functions as the processors (``merge_account``, ``decide_quote``,
``fold_order_state``), in one stateful Quix dataframe over the account and quote topics
(co-partitioned, keyed by account id), with state in Quix's RocksDB store (changelogged):
per account key, the merged account and each quote's order state, so a quote revision already
ordered is suppressed (dedup per quote id and revision). Prints ``ready`` once assigned.

    python -m bench.quix.app BOOTSTRAP PREFIX STATE_DIR
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any

from quixstreams import Application, State

from contracts import decode, encode
from contracts.models import AccountEvent, QuoteEvent
from contracts.ownership import load_ownership
from processors.domain.accounts import merge_account
from processors.domain.quotes import decide_quote, fold_order_state
from processors.topic_names import ProcessorTopics

__all__ = ["build_app", "handle"]

POLICY = load_ownership()


def handle(value: bytes, state: State) -> list[bytes]:
    """One input record against its account's state; the order commands to emit (0 or 1)."""
    event = decode(value)
    if isinstance(event, AccountEvent):
        result = merge_account(state.get("account"), event, POLICY)
        if not result.rejected:
            state.set("account", result.state)
        return []
    if not isinstance(event, QuoteEvent):
        return []
    key = f"q:{event.payload.quote_id}"
    current = state.get(key)
    decision = decide_quote(event, current, state.get("account"))
    if decision.command is None or decision.kind != "create-order":
        return []
    state.set(key, fold_order_state(current, decision.command))
    return [encode(decision.command)]


def build_app(bootstrap: str, prefix: str, state_dir: str) -> tuple[Application, Any]:
    """The Quix application and its output dataframe."""
    topics = ProcessorTopics(prefix)
    app = Application(
        broker_address=bootstrap,
        consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=state_dir,
        commit_interval=1.0,
        consumer_extra_config={"session.timeout.ms": 6000, "fetch.max.bytes": 16 * 2**20},
        producer_extra_config={"linger.ms": 10},
        auto_create_topics=True,
    )
    serde: dict[str, Any] = {"key_deserializer": "bytes", "value_deserializer": "bytes"}
    accounts = app.dataframe(app.topic(topics.account, **serde))
    quotes = app.dataframe(app.topic(topics.quote, **serde))
    out = app.topic(topics.create_order, key_serializer="bytes", value_serializer="bytes")
    sdf = accounts.concat(quotes).apply(handle, stateful=True, expand=True)
    # Quix keeps the input's timestamp on outputs; stamp the command's production time instead,
    # as the other processors' producers do, so append times measure the processing.
    sdf = sdf.set_timestamp(lambda _value, _key, _ts, _headers: int(time.time() * 1000))
    sdf.to_topic(out)
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
