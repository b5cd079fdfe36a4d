"""Built-in Postgres CDC source: logical decoding (wal2json) to Debezium envelopes on Kafka.

How it stays consistent and loses nothing:

1. **Slot first.** ``pg_create_logical_replication_slot(slot, 'wal2json')`` returns once the
   slot is consistent; from then on Postgres keeps every later change for the slot. Its LSN is
   recorded in ``interlock_cdc.snapshots`` (a small bookkeeping table in the source database).
2. **Snapshot second.** A REPEATABLE READ, READ ONLY transaction started after that sees every
   transaction committed before the slot's consistent point. Rows are published with op ``r``
   and the recorded LSN. A transaction committed between the two appears in both the snapshot
   and the stream: the consumer sees the row's newer state first and then the change again,
   which ends at the same state (per-key order is kept; the event ids are deterministic). The
   snapshot is marked complete only after Kafka acknowledged every row; a crash before that
   redoes it on restart, against the same slot and LSN (so the same event ids).
3. **Stream.** Changes are read with ``pg_logical_slot_peek_changes`` (whole transactions),
   published keyed by primary key, flushed, and only after every delivery succeeded is the slot
   advanced (``pg_replication_slot_advance``) to the last commit. A crash between publish and
   advance re-publishes those changes after restart (same LSN, same event id); nothing is lost.

Rows look as Debezium's Postgres connector (pgoutput, ``decimal.handling.mode=string``)
publishes them, so the same mappings and event ids apply to both: wal2json numbers are read
exactly (``Decimal``, never ``float``); a column added while streaming is converted by the type
wal2json names; an unchanged TOASTed column, which logical decoding leaves out of an update,
is taken from the old row where the table logs it (``REPLICA IDENTITY FULL``), else it is
Debezium's unavailable-value placeholder; ``source.ts_ms`` is the commit time truncated to
the millisecond.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

import psycopg
from psycopg import sql

from connectors.cdc.envelope import UNAVAILABLE_PLACEHOLDER
from connectors.cdc.pgsetup import logical_decoding_problems
from connectors.cdc.pgvalues import converter_for
from contracts.errors import ConfigError, InterlockError, Reason
from interlock.kafka import produce

__all__ = ["PostgresSource", "PostgresSourceConfig", "logical_decoding_problems", "lsn_to_int"]

log = logging.getLogger(__name__)

_COLUMNS = (
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
    "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
    "ORDER BY a.attnum"
)
_PRIMARY_KEY = (
    "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = "
    "i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(%s) "
    "AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)"
)
Progress = Callable[[str, int, int], None]


class ProducerLike(Protocol):
    """The part of ``confluent_kafka.Producer`` the source uses."""

    def produce(self, topic: str, *args: Any, **kwargs: Any) -> None: ...

    def poll(self, timeout: float = ...) -> int: ...

    def flush(self, timeout: float = ...) -> int: ...


class PublishError(InterlockError):
    """Kafka did not acknowledge every change; the slot is not advanced."""

    reason = Reason.BROKER_UNAVAILABLE
    transient = True


def lsn_to_int(lsn: str) -> int:
    """``'16/B374D848'`` -> 64-bit integer, as Debezium writes ``source.lsn``."""
    hi, lo = lsn.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


@dataclass(frozen=True)
class PostgresSourceConfig:
    """What to capture and where to publish it."""

    dsn: str
    tables: list[str]
    slot: str = "interlock_erp"
    topic_prefix: str = "raw.erp."
    server_name: str = "erp"
    snapshot: Literal["initial", "never"] = "initial"
    max_changes: int = 5000
    poll_interval_s: float = 0.2
    snapshot_batch: int = 5000


@dataclass
class _Table:
    schema: str
    name: str
    columns: dict[str, Callable[[Any], Any]]
    types: dict[str, str]
    pk: list[str]
    topic: str = ""

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass
class _Delivery:
    failed: list[str] = field(default_factory=list)

    def __call__(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.failed.append(str(err))


class PostgresSource:
    """Snapshot then stream a set of tables to ``<topic_prefix><table>`` topics.

    Args:
        config: the source's configuration.
        producer: a durable producer (acks=all, idempotent).
        on_published: called with (topic, count) after each acknowledged batch (metrics).
    """

    def __init__(
        self,
        config: PostgresSourceConfig,
        producer: ProducerLike,
        *,
        on_published: Callable[[str, int], None] | None = None,
    ) -> None:
        self.config = config
        self._producer = producer
        self._on_published = on_published
        self._conn = self._connect(autocommit=True)
        self._tables = self._describe(config.tables)
        self._db = str(self._conn.info.dbname)

    def _connect(self, *, autocommit: bool) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.config.dsn, autocommit=autocommit)
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET DateStyle = 'ISO'")
        if not autocommit:
            conn.commit()
        return conn

    def close(self) -> None:
        self._conn.close()

    def _catalog(self, sql: str, qualified: str, missing: str) -> list[Any]:
        """The catalog rows ``sql`` gives for one table; none is a configuration error."""
        rows = self._conn.execute(sql, (qualified,)).fetchall()
        if not rows:
            raise ConfigError(f"table {qualified} {missing}")
        return rows

    def _describe(self, names: Iterable[str]) -> dict[str, _Table]:
        tables: dict[str, _Table] = {}
        for raw in names:
            schema, _, name = raw.rpartition(".")
            schema = schema or "public"
            qualified = f"{schema}.{name}"
            cols = self._catalog(_COLUMNS, qualified, "does not exist in the source database")
            pk = [
                r[0]
                for r in self._catalog(
                    _PRIMARY_KEY, qualified, "has no primary key to key events by"
                )
            ]
            table = _Table(
                schema,
                name,
                {c: converter_for(t) for c, t in cols},
                {c: t for c, t in cols},
                pk,
                f"{self.config.topic_prefix}{name}",
            )
            tables[table.qualified] = table
        return tables

    # -- slot and bookkeeping -------------------------------------------------------------

    def prepare(self) -> bool:
        """Create or reuse the slot; True when a snapshot is (still) needed."""
        row = self._conn.execute(
            "SELECT current_setting('wal_level'), current_setting('output_plugin_libraries', true)"
        ).fetchone()
        problems = logical_decoding_problems(*(row or (None, None)))
        if problems:
            raise ConfigError(
                "the source database is not ready for CDC:\n  - " + "\n  - ".join(problems)
            )
        self._conn.execute("CREATE SCHEMA IF NOT EXISTS interlock_cdc")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS interlock_cdc.snapshots (slot_name text PRIMARY KEY, "
            "consistent_lsn pg_lsn NOT NULL, completed_at timestamptz)"
        )
        slot = self.config.slot
        existing = self._conn.execute(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
            (slot,),
        ).fetchone()
        if existing is None:
            row = self._conn.execute(
                "SELECT lsn::text FROM pg_create_logical_replication_slot(%s, 'wal2json')", (slot,)
            ).fetchone()
            assert row is not None
            self._conn.execute(
                "INSERT INTO interlock_cdc.snapshots VALUES (%s, %s, NULL) ON CONFLICT "
                "(slot_name) DO UPDATE SET consistent_lsn = EXCLUDED.consistent_lsn, "
                "completed_at = NULL",
                (slot, row[0]),
            )
            log.info("created replication slot %s at %s", slot, row[0])
        else:
            self._conn.execute(
                "INSERT INTO interlock_cdc.snapshots VALUES (%s, %s, NULL) "
                "ON CONFLICT (slot_name) DO NOTHING",
                (slot, existing[0]),
            )
        state = self._conn.execute(
            "SELECT consistent_lsn::text, completed_at FROM interlock_cdc.snapshots "
            "WHERE slot_name = %s",
            (slot,),
        ).fetchone()
        assert state is not None
        self._snapshot_lsn = lsn_to_int(state[0])
        return self.config.snapshot == "initial" and state[1] is None

    def drop_slot(self) -> None:
        """Drop the slot and its bookkeeping (tests, and decommissioning a source)."""
        self._conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = %s",
            (self.config.slot,),
        )
        self._conn.execute(
            "DELETE FROM interlock_cdc.snapshots WHERE slot_name = %s", (self.config.slot,)
        )

    # -- publishing -----------------------------------------------------------------------

    def _envelope(
        self,
        table: _Table,
        op: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        *,
        ts_ms: int,
        lsn: int,
        tx_id: int | None,
        snapshot: str,
    ) -> bytes:
        return json.dumps(
            {
                "before": before,
                "after": after,
                "source": {
                    "version": "interlock",
                    "connector": "postgresql",
                    "name": self.config.server_name,
                    "ts_ms": ts_ms,
                    "snapshot": snapshot,
                    "db": self._db,
                    "schema": table.schema,
                    "table": table.name,
                    "txId": tx_id,
                    "lsn": lsn,
                },
                "op": op,
                "ts_ms": int(time.time() * 1000),
            },
            separators=(",", ":"),
        ).encode()

    def _key(self, table: _Table, row: dict[str, Any]) -> bytes:
        return json.dumps({c: row.get(c) for c in table.pk}, separators=(",", ":")).encode()

    def _produce(self, topic: str, key: bytes | None, value: bytes, delivery: _Delivery) -> None:
        produce(self._producer, topic, value, key, on_delivery=delivery)

    def _acknowledge(self, delivery: _Delivery, counts: dict[str, int]) -> None:
        remaining = self._producer.flush(60)
        if remaining or delivery.failed:
            raise PublishError(
                f"Kafka did not acknowledge {remaining} change(s); errors: {delivery.failed[:3]}"
            )
        if self._on_published is not None:
            for topic, n in counts.items():
                self._on_published(topic, n)

    def snapshot(self, progress: Progress | None = None) -> int:
        """Publish every row of every table (op r); returns the row count."""
        conn = self._connect(autocommit=False)
        total = 0
        try:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            sizes = {}
            for q, table in self._tables.items():
                ident = sql.Identifier(table.schema, table.name)
                row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
                sizes[q] = int(row[0]) if row else 0
            ts_ms = int(time.time() * 1000)
            for q, table in self._tables.items():
                done = 0
                counts: dict[str, int] = {}
                delivery = _Delivery()
                ident = sql.Identifier(table.schema, table.name)
                columns = list(table.columns.items())
                with conn.cursor(name=f"interlock_snapshot_{table.name}") as cur:
                    cur.itersize = self.config.snapshot_batch
                    cur.execute(sql.SQL("SELECT * FROM {}").format(ident))
                    names = [d.name for d in cur.description or ()]
                    convs = [dict(columns).get(n, lambda v: v) for n in names]
                    for values in cur:
                        after = {
                            n: (None if v is None else conv(v))
                            for n, conv, v in zip(names, convs, values, strict=True)
                        }
                        value = self._envelope(
                            table, "r", None, after, ts_ms=ts_ms,
                            lsn=self._snapshot_lsn, tx_id=None, snapshot="true",
                        )  # fmt: skip
                        self._produce(table.topic, self._key(table, after), value, delivery)
                        done += 1
                        if done % 1000 == 0:
                            self._producer.poll(0)
                            if progress is not None:
                                progress(q, done, sizes[q])
                counts[table.topic] = done
                self._acknowledge(delivery, counts)
                if progress is not None:
                    progress(q, done, sizes[q])
                total += done
            conn.commit()
        finally:
            conn.close()
        self._conn.execute(
            "UPDATE interlock_cdc.snapshots SET completed_at = now() WHERE slot_name = %s",
            (self.config.slot,),
        )
        return total

    def _row(self, table: _Table, cols: list[dict[str, Any]] | None) -> dict[str, Any] | None:
        if cols is None:
            return None
        out: dict[str, Any] = {}
        for col in cols:
            name = col["name"]
            value = col.get("value")
            conv = table.columns.get(name)
            if conv is None:  # added while streaming: wal2json names its type
                conv = table.columns[name] = converter_for(str(col.get("type") or ""))
            if value is None:
                out[name] = None
                continue
            value = conv(value)
            # wal2json numbers are read as Decimal; only numeric columns keep them as such
            out[name] = float(value) if isinstance(value, Decimal) else value
        return out

    @staticmethod
    def _unchanged(table: _Table, after: dict[str, Any], before: dict[str, Any] | None) -> None:
        """Fill the columns an update left out (unchanged TOAST) as Debezium does.

        From the old row where the table logs it (REPLICA IDENTITY FULL), else the
        unavailable-value placeholder: the value is not known, and it did not change.
        """
        for name in table.columns:
            if name not in after:
                if before is not None and name in before:
                    after[name] = before[name]
                else:
                    after[name] = UNAVAILABLE_PLACEHOLDER

    def stream_once(self) -> int:
        """Publish the next whole transactions, then advance the slot; returns changes sent."""
        add_tables = ",".join(self._tables)
        rows = self._conn.execute(
            "SELECT lsn::text, data FROM pg_logical_slot_peek_changes(%s, NULL, %s, "
            "'format-version', '2', 'include-timestamp', '1', 'include-xids', '1', "
            "'add-tables', %s)",
            (self.config.slot, self.config.max_changes, add_tables),
        ).fetchall()
        if not rows:
            return 0
        delivery = _Delivery()
        counts: dict[str, int] = {}
        last_commit: str | None = None
        xid: int | None = None
        ts_ms = 0
        sent = 0
        for lsn, data in rows:
            change = json.loads(data, parse_float=Decimal)
            action = change.get("action")
            if action == "B":
                xid = change.get("xid")
                ts_ms = _ts_ms(change.get("timestamp"))
                continue
            if action == "C":
                last_commit = lsn
                continue
            if action not in ("I", "U", "D", "T"):
                continue
            table = self._tables.get(f"{change.get('schema')}.{change.get('table')}")
            if table is None:
                continue
            before = self._row(table, change.get("identity")) if action in ("U", "D") else None
            after = self._row(table, change.get("columns")) if action in ("I", "U") else None
            if action == "U" and after is not None:
                self._unchanged(table, after, before)
            op = {"I": "c", "U": "u", "D": "d", "T": "t"}[action]
            value = self._envelope(
                table, op, before, after, ts_ms=ts_ms, lsn=lsn_to_int(lsn), tx_id=xid,
                snapshot="false",
            )  # fmt: skip
            image = after if after is not None else before
            key = self._key(table, image) if image is not None else None
            self._produce(table.topic, key, value, delivery)
            counts[table.topic] = counts.get(table.topic, 0) + 1
            sent += 1
        self._acknowledge(delivery, counts)
        if last_commit is not None:
            self._conn.execute(
                "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)",
                (self.config.slot, last_commit),
            )
        return sent

    def run(self, stop: threading.Event, progress: Progress | None = None) -> None:
        """Snapshot if needed, then stream until ``stop`` is set."""
        if self.prepare():
            self.snapshot(progress)
        while not stop.is_set():
            if self.stream_once() == 0:
                stop.wait(self.config.poll_interval_s)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ts_ms(value: Any) -> int:
    """Milliseconds since the epoch of a wal2json commit time, truncated as Debezium does.

    Integer arithmetic: ``timestamp() * 1000`` in floating point may land a millisecond short.
    """
    if not value:
        return int(time.time() * 1000)
    delta = datetime.fromisoformat(str(value)) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000 + delta.microseconds // 1_000
