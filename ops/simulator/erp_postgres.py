"""The simulated ERP's row changes applied to a real PostgreSQL ERP database, as SQL.

With ``interlock up --erp postgres`` the simulator does not publish Debezium-shaped changes
itself: every :class:`ChangeAction` (the scenario's customers and products, the fake ERP's
orders, shipments and invoices) becomes an ``INSERT``, ``UPDATE`` or ``DELETE`` by primary key
on the sample schema (``connectors/sql/erp_schema.sql``), and change data capture (the built-in
source or Debezium) carries it to Kafka as it would for a real ERP.

An update sets only the columns the change alters, so the database's row is the ERP's row and
the captured before/after images are the database's own. ``updated_at`` left empty by the
simulator is the database's ``now()``, as an ERP stamps its rows. A redelivery (``repeat``) is a
fault of a change stream, not of a database: it is not applied (and counted).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ops.simulator.actions import ChangeAction

__all__ = ["ERP_SCHEMA_SQL", "ErpTables"]

log = logging.getLogger(__name__)
RECONNECT_S = 60.0
"""How long a change waits for the ERP database to come back (a restart takes seconds)."""
ERP_SCHEMA_SQL = Path(__file__).resolve().parents[2] / "connectors" / "sql" / "erp_schema.sql"
"""The sample ERP schema the tables follow (``ops`` reads the file; it imports no connector)."""


class ErpTables:
    """Applies ERP row changes to the database at ``dsn``; thread-safe (one connection).

    The fake ERP emits changes from its API's thread and the scenario from the generator's:
    one lock keeps each row's changes in the order they were made.
    """

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._lock = threading.Lock()
        self._columns = self._describe()
        self.applied = 0
        self.skipped_repeats = 0

    def _describe(self) -> dict[str, set[str]]:
        rows = self._conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        ).fetchall()
        columns: dict[str, set[str]] = {}
        for table, column in rows:
            columns.setdefault(str(table), set()).add(str(column))
        return columns

    def apply(self, change: ChangeAction) -> None:
        """Make ``change`` in the database (insert, update or delete by its primary key).

        Raises:
            ValueError: the change names a table or column the schema does not have.
        """
        if change.repeat:
            self.skipped_repeats += 1
            return
        statement, params = self.statement(change)
        if statement is None:
            return
        with self._lock:
            self._execute(statement, params)
            self.applied += 1

    def _execute(self, statement: sql.Composed, params: list[Any]) -> None:
        """Run one statement, reconnecting while the database restarts (as an ERP application
        would): a connection that breaks mid-statement may have applied it, so an insert that
        then finds its row is taken as done; updates and deletes by key repeat harmlessly."""
        deadline = time.monotonic() + RECONNECT_S
        retried = False
        while True:
            try:
                self._conn.execute(statement, params)
                return
            except psycopg.errors.UniqueViolation:
                if retried:
                    return
                raise
            except psycopg.OperationalError as exc:
                if time.monotonic() >= deadline:
                    raise
                log.warning("ERP database unavailable (%s); reconnecting", exc)
                time.sleep(0.5)
                try:
                    self._conn = psycopg.connect(self._dsn, autocommit=True)
                except psycopg.OperationalError:
                    continue
                retried = True

    def statement(self, change: ChangeAction) -> tuple[sql.Composed | None, list[Any]]:
        """The SQL of ``change`` and its parameters (None: an update that changes nothing)."""
        known = self._columns.get(change.table)
        if known is None:
            raise ValueError(f"the ERP database has no table {change.table!r}")
        named = set(change.key) | set(change.after or {}) | set(change.before or {})
        unknown = named - known
        if unknown:
            raise ValueError(f"table {change.table} has no column(s) {sorted(unknown)}")
        table = sql.Identifier(change.table)
        where = sql.SQL(" AND ").join(
            sql.SQL("{} = %s").format(sql.Identifier(k)) for k in change.key
        )
        keys = list(change.key.values())
        if change.op == "d":
            return sql.SQL("DELETE FROM {} WHERE {}").format(table, where), keys
        after = change.after or {}
        if change.op == "c":
            # an empty column takes the schema's default (now() for the timestamps, NULL else)
            values = {k: v for k, v in after.items() if v is not None}
            statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                table,
                sql.SQL(", ").join(sql.Identifier(k) for k in values),
                sql.SQL(", ").join(sql.Placeholder() for _ in values),
            )
            return statement, list(values.values())
        before = change.before or {}
        changed = {
            k: v
            for k, v in after.items()
            if k not in change.key and k != "updated_at" and before.get(k) != v
        }
        if not changed:
            return None, []
        assignments: list[sql.Composable] = [
            sql.SQL("{} = %s").format(sql.Identifier(k)) for k in changed
        ]
        if "updated_at" in known and after.get("updated_at") is None:
            assignments.append(sql.SQL("updated_at = now()"))
        statement = sql.SQL("UPDATE {} SET {} WHERE {}").format(
            table, sql.SQL(", ").join(assignments), where
        )
        return statement, [*changed.values(), *keys]

    def close(self) -> None:
        self._conn.close()
