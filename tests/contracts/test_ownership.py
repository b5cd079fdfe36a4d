"""Field ownership is data: who owns what, what a non-owner's change becomes, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts import ConfigError, OwnershipViolation, apply_ownership, load_ownership
from contracts.ownership import OWNERSHIP_PATH

pytestmark = pytest.mark.unit


def test_shipped_rules_load_and_match_the_design() -> None:
    policy = load_ownership()
    assert policy.owner_of("account", "name") == "crm"
    assert policy.owner_of("account", "lifecycle_stage") == "crm"
    assert policy.owner_of("account", "credit_limit") == "erp"
    assert policy.owner_of("account", "erp_customer_number") == "erp"
    assert policy.owner_of("account", "account_id") is None


def test_non_owner_change_is_stripped_and_reported() -> None:
    policy = load_ownership()
    allowed, violations = apply_ownership(
        policy, "account", "erp", {"name": "Acme", "payment_terms": "NET45", "account_id": "a"}
    )
    assert allowed == {"payment_terms": "NET45", "account_id": "a"}
    assert violations == [OwnershipViolation("account", "name", "crm", "erp", "strip")]
    assert str(violations[0]) == "account.name is owned by crm; change from erp stripped"


def test_reject_policy_marks_the_whole_change_rejected() -> None:
    decision = load_ownership().apply("account", "crm", ["owner", "credit_hold"])
    assert decision.allowed == ["owner"]
    assert decision.rejected
    assert [v.field for v in decision.violations] == ["credit_hold"]


def test_owner_changes_pass_untouched() -> None:
    decision = load_ownership().apply("order", "erp", {"status": "SHIPPED"})
    assert decision.allowed == {"status": "SHIPPED"}
    assert not decision.violations
    assert not decision.rejected


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ownership.yaml"
    path.write_text(text)
    return path


def test_unknown_field_names_file_line_and_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "entities:\n  account:\n    fields:\n      name: crm\n      nmae: crm\n"
    )
    with pytest.raises(ConfigError, match=rf"{path}:5: entity 'account' has no field 'nmae'"):
        load_ownership(path)


def test_unknown_entity_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "entities:\n  acount:\n    fields: {}\n")
    with pytest.raises(ConfigError, match=rf"{path}:2: unknown entity 'acount'"):
        load_ownership(path)


def test_bad_owner_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "entities:\n  account:\n    fields:\n      name: sap\n")
    with pytest.raises(ConfigError, match=rf"{path}:4: entities.account.fields.name.owner"):
        load_ownership(path)


def test_shipped_file_is_the_default() -> None:
    assert load_ownership(OWNERSHIP_PATH) == load_ownership()
