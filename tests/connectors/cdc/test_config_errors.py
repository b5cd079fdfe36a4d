"""Mapping errors name file:line, mapping and field; server readiness; truncate audit records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.cdc import CdcMapper, EnvelopeDecoder, load_mapping_dir
from connectors.cdc.audit import truncate_record
from connectors.cdc.pgsetup import logical_decoding_problems
from connectors.cdc.spec import annotate_lines, locate
from contracts.errors import ConfigError
from contracts.ids import deterministic_event_id
from interlock.records import RawRecord
from tests.connectors.cdc.conftest import debezium

pytestmark = pytest.mark.unit

GOOD = """\
mappings:
  - name: fine
    table: t
    entity: account
    record_id: [id]
    fields:
      account_id: id
"""


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_validation_errors_name_the_line_of_the_field(tmp_path: Path) -> None:
    text = GOOD + (
        "  - name: broken\n    table: t\n    entity: account\n    record_id: [id]\n"
        "    fields:\n      account_id: id\n      name: {column: a, const: b}\n"
    )
    (tmp_path / "m.yaml").write_text(text)
    line = _line_of(text, "name: {column: a")
    with pytest.raises(ConfigError) as err:
        load_mapping_dir(tmp_path)
    assert f"m.yaml: mapping 'broken': field 'name': line {line}: " in err.value.message
    assert "exactly one of column, const" in err.value.message


def test_a_missing_key_names_the_line_of_its_mapping(tmp_path: Path) -> None:
    text = GOOD + "  - name: no-entity\n    table: t\n    record_id: [id]\n    fields: {}\n"
    (tmp_path / "m.yaml").write_text(text)
    line = _line_of(text, "- name: no-entity")
    with pytest.raises(
        ConfigError, match=rf"m\.yaml: mapping 'no-entity': line {line}: entity: Field required"
    ):
        load_mapping_dir(tmp_path)


def test_errors_found_when_compiling_get_their_line(tmp_path: Path) -> None:
    text = (
        "mappings:\n  - name: wrong-enum\n    table: t\n    entity: order\n"
        "    record_id: [id]\n    fields:\n      order_id: id\n"
        "      status: {column: s, map: {X: SHIPPPED}}\n"
    )
    path = tmp_path / "orders.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        CdcMapper(load_mapping_dir(tmp_path))
    annotated = annotate_lines(err.value.message)
    line = _line_of(text, "status: {column")
    assert annotated.startswith(f"{path}: mapping 'wrong-enum': field 'status': line {line}: enum")
    assert locate(path, "wrong-enum") == _line_of(text, "- name: wrong-enum")
    assert locate(path, "absent") is None
    assert annotate_lines("no location here") == "no location here"


def test_logical_decoding_problems_name_what_to_configure() -> None:
    assert logical_decoding_problems("logical", None) == []
    assert logical_decoding_problems("logical", "pgoutput, wal2json") == []
    both = logical_decoding_problems("replica", "pgoutput, test_decoding")
    assert len(both) == 2
    assert "wal_level = logical" in both[0]
    assert "restart" in both[0]
    assert "output_plugin_libraries = 'pgoutput, test_decoding, wal2json'" in both[1]
    assert logical_decoding_problems("logical", "pgoutput") == [
        "output_plugin_libraries is 'pgoutput' and does not allow wal2json: "
        "set `output_plugin_libraries = 'pgoutput, wal2json'` and reload"
    ]


def test_truncate_record_links_to_its_transaction() -> None:
    payload = debezium("t", "customers", None, None, lsn=4242, tx=9)
    value = json.dumps(payload).encode()
    change = EnvelopeDecoder().decode(value, "raw.erp.customers")
    assert change is not None
    raw = RawRecord("raw.erp.customers", 2, 17, None, value, (), 1)
    at = datetime(2024, 5, 1, tzinfo=UTC)
    record = truncate_record(change, raw, "dlq.raw.erp.customers", at)
    assert record["decision"] == "truncate_reported"
    assert (record["table"], record["lsn"], record["ts_ms"]) == (
        "public.customers",
        4242,
        1559033904863,
    )
    # the source transaction (txId), as with transaction metadata off
    assert record["correlation_id"] == deterministic_event_id("cdc-tx", "erp", "9")
    assert record["details"]["original"] == {
        "topic": "raw.erp.customers",
        "partition": 2,
        "offset": 17,
    }
    assert record["at"] == at.isoformat()
    json.dumps(record)  # the audit value is JSON
