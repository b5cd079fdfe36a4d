"""CDC fixtures: a throwaway logical-decoding Postgres per session, Debezium envelope builders."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.connectors.cdc.pgserver import create_database, throwaway_postgres

SCHEMA_SQL = (Path(__file__).resolve().parents[3] / "connectors/sql/erp_schema.sql").read_text()
CUSTOMER = {
    "customer_number": "C-100", "name": "Acme GmbH", "legal_name": None, "tax_id": "DE123",
    "payment_terms": "N30", "credit_limit_minor": 1250000, "credit_hold": False,
    "currency": "EUR", "web_domain": "acme.example", "phone": None, "crm_id": "hs-1",
    "billing_line1": "Hauptstr. 1", "billing_city": "Berlin", "billing_postal_code": "10115",
    "billing_country": "DE", "shipping_line1": None, "shipping_city": None,
    "shipping_postal_code": None, "shipping_country": None, "updated_at": "2024-05-01T10:00:00Z",
}  # fmt: skip
"""A row of the sample ERP's ``customers`` table, every column set."""


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    with throwaway_postgres() as dsn:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SHOW wal_level").fetchone()
        assert row is not None
        assert row[0] == "logical"
        yield dsn


@pytest.fixture
def erp_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A fresh database with the sample ERP schema; its slots are dropped afterwards."""
    name = f"erp_{uuid.uuid4().hex[:8]}"
    dsn = create_database(pg_admin_dsn, name, SCHEMA_SQL)
    yield dsn
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        # a slot blocks DROP DATABASE; one a stopped client (Debezium) held may take a moment
        # to become inactive
        deadline = time.monotonic() + 15
        while True:
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE database = %s AND NOT active",
                (name,),
            )
            row = conn.execute(
                "SELECT count(*) FROM pg_replication_slots WHERE database = %s", (name,)
            ).fetchone()
            if not row or row[0] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def debezium(
    op: str,
    table: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    *,
    lsn: int = 24023128,
    tx: int = 555,
    snapshot: str = "false",
) -> dict[str, Any]:
    """A Debezium Postgres connector payload, as in its documentation."""
    return {
        "before": before,
        "after": after,
        "source": {
            "version": "2.5.0.Final",
            "connector": "postgresql",
            "name": "erp",
            "ts_ms": 1559033904863,
            "snapshot": snapshot,
            "db": "erp",
            "sequence": '["24023119","24023128"]',
            "schema": "public",
            "table": table,
            "txId": tx,
            "lsn": lsn,
            "xmin": None,
        },
        "op": op,
        "ts_ms": 1559033904866,
        "transaction": {"id": f"{tx}:{lsn}", "total_order": 1, "data_collection_order": 1},
    }


def with_schema(payload: dict[str, Any], decimal_columns: dict[str, int]) -> bytes:
    """The JsonConverter schemas.enable=true form (Decimal columns as base64 bytes)."""
    row_fields = [
        {
            "type": "bytes",
            "optional": True,
            "name": "org.apache.kafka.connect.data.Decimal",
            "version": 1,
            "parameters": {"scale": str(scale)},
            "field": col,
        }
        for col, scale in decimal_columns.items()
    ]
    return json.dumps({"schema": envelope_schema(row_fields), "payload": payload}).encode()


def envelope_schema(row_fields: list[dict[str, Any]]) -> dict[str, Any]:
    """The Connect schema of a change event of a table whose row has ``row_fields``."""
    return {
        "type": "struct",
        "name": "erp.public.t.Envelope",
        "fields": [
            {"type": "struct", "fields": row_fields, "optional": True, "field": "before"},
            {"type": "struct", "fields": row_fields, "optional": True, "field": "after"},
            {"type": "struct", "fields": [], "optional": False, "field": "source"},
            {"type": "string", "optional": False, "field": "op"},
        ],
        "optional": False,
    }
