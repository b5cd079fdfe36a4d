"""The simulated ERP's row changes as SQL on the sample ERP schema (``--erp postgres``).

Every row the simulator writes (the scenario's customers and products, the fake ERP's orders,
shipments and invoices) must fit the schema's tables and columns, and the database must end
with the rows the simulator holds.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from ops.simulator.actions import ChangeAction, CreditHoldAction
from ops.simulator.erp_database import ERP_TABLES
from ops.simulator.erp_postgres import ERP_SCHEMA_SQL, ErpTables
from ops.simulator.fake_erp import ErpBook, ErpTimings
from ops.simulator.scenario import Scenario
from ops.simulator.truth import Recorded
from tests.connectors.cdc.pgserver import create_database, throwaway_postgres

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def admin_dsn() -> Iterator[str]:
    with throwaway_postgres() as dsn:
        yield dsn


@pytest.fixture
def erp_dsn(admin_dsn: str) -> str:
    return create_database(admin_dsn, f"erp_{uuid.uuid4().hex[:8]}", ERP_SCHEMA_SQL.read_text())


def _rows(dsn: str, table: str, key: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(dsn) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return {str(r[key]): r for r in cur.execute(f"SELECT * FROM {table}").fetchall()}


def test_the_scenario_and_the_order_lifecycle_land_in_the_sample_schema(erp_dsn: str) -> None:
    tables = ErpTables(erp_dsn)
    now = [0.0]
    book = ErpBook(
        tables.apply,
        Recorded(),
        seed=1,
        timings=ErpTimings(unavailable=0.0, order_hold=0.0),
        clock=lambda: now[0],
    )
    scenario = Scenario(seed=4)
    customers: dict[str, dict[str, Any]] = {}
    products: dict[str, dict[str, Any]] = {}
    for action in itertools.islice(scenario.actions(), 400):
        if isinstance(action, ChangeAction) and not action.repeat:
            tables.apply(action)
            store = customers if action.table == "customers" else products
            assert action.after is not None
            store[str(next(iter(action.key.values())))] = action.after
        elif isinstance(action, CreditHoldAction):
            book.set_credit_hold(action.customer_number, action.hold, action.row)
            customers[action.customer_number]["credit_hold"] = action.hold
    customer = next(iter(customers))
    lines = [{"sku": next(iter(products)), "quantity": "2", "unit_price": "12.50"}]
    status, answer = book.create(
        "key-1",
        {"erp_customer_number": customer, "lines": lines, "quote_id": "q-1",
         "quote_revision": 1, "crm_record_id": "1007", "currency": "EUR"},
    )  # fmt: skip
    assert status == 201
    now[0] = 60.0
    assert book.advance() == 3  # confirmed, shipped, invoiced
    tables.close()

    in_db = _rows(erp_dsn, "customers", "customer_number")
    assert set(in_db) == set(customers)
    for number, row in customers.items():
        assert in_db[number]["name"] == row["name"]
        assert in_db[number]["credit_hold"] is row["credit_hold"]
    prices = {sku: r["unit_price_minor"] for sku, r in _rows(erp_dsn, "products", "sku").items()}
    assert prices == {sku: row["unit_price_minor"] for sku, row in products.items()}
    order = _rows(erp_dsn, "sales_orders", "order_number")[answer["order_number"]]
    held = book.order(answer["order_number"])
    assert held is not None
    assert (order["status"], order["total_minor"], order["quote_revision"]) == (
        "INVOICED",
        held["total_minor"],
        1,
    )
    assert str(order["promised_date"]) == held["promised_date"]
    assert order["updated_at"] > order["ordered_at"]  # stamped by the database on update
    assert list(_rows(erp_dsn, "shipments", "shipment_number")) == ["SH-000001"]
    invoice = _rows(erp_dsn, "invoices", "invoice_number")["INV-000001"]
    assert invoice["amount_minor"] == held["subtotal_minor"]


def test_a_column_the_schema_lacks_is_refused_by_name(erp_dsn: str) -> None:
    tables = ErpTables(erp_dsn)
    change = ChangeAction("products", "c", {"sku": "S1"}, None, {"sku": "S1", "colour": "red"}, 1)
    with pytest.raises(ValueError, match=r"products has no column\(s\) \['colour'\]"):
        tables.apply(change)
    tables.close()


def test_every_captured_table_is_in_the_schema(erp_dsn: str) -> None:
    with psycopg.connect(erp_dsn) as conn:
        found = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
    assert found == set(ERP_TABLES)
