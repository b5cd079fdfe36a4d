"""The commercial policy as data: limits, routing, severity and SLAs, validated at load."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from contracts import Quote, QuoteLine
from contracts.errors import ConfigError
from contracts.policy import load_policy, quote_discount_pct

pytestmark = pytest.mark.unit

POLICY = load_policy()


def quote(**fields: object) -> Quote:
    values: dict[str, object] = {
        "quote_id": "q",
        "revision": 1,
        "account_id": "a",
        "currency": "EUR",
        "subtotal": Decimal("1000"),
        "total": Decimal("1000"),
        **fields,
    }
    return Quote.model_validate(values)


def test_a_quote_within_every_limit_passes() -> None:
    assert POLICY.breaches(quote(), first_order=False) == []


def test_overall_discount_over_the_limit_is_a_breach() -> None:
    found = POLICY.breaches(quote(discount_total=Decimal("300")), first_order=False)
    assert [(b.limit, b.actual) for b in found] == [("max_discount_pct", "30.00")]


def test_a_lines_discount_counts_too() -> None:
    line = QuoteLine(line_number=1, sku="S", quantity=Decimal(1), discount_percent=Decimal(35))
    assert quote_discount_pct(quote(lines=[line])) == Decimal("35.00")
    assert POLICY.breaches(quote(lines=[line]), first_order=False)[0].limit == "max_discount_pct"


def test_order_total_limit_is_per_currency() -> None:
    big = Decimal("260000")
    assert [b.limit for b in POLICY.breaches(quote(total=big), False)] == ["order_total"]
    assert POLICY.breaches(quote(total=big, currency="USD"), False) == []
    assert POLICY.breaches(quote(total=big, currency="JPY"), False) == []  # not listed: no cap


def test_a_new_customers_first_order_has_its_own_limit() -> None:
    total = Decimal("60000")
    assert POLICY.breaches(quote(total=total), first_order=False) == []
    assert [b.limit for b in POLICY.breaches(quote(total=total), True)] == ["first_order_total"]


def test_routing_by_kind_and_by_reason() -> None:
    assert POLICY.team_for("policy") == "finance"
    assert POLICY.team_for("account_match") == "sales-ops"
    assert POLICY.team_for("validation", "VALIDATION_FAILED", "QUOTE_UNKNOWN_PRODUCT") == (
        "integration"
    )


@pytest.mark.parametrize(
    ("total", "currency", "severity"),
    [
        (Decimal("100"), "EUR", "low"),
        (Decimal("5000"), "EUR", "medium"),
        (Decimal("60000"), "EUR", "high"),
        (Decimal("300000"), "EUR", "critical"),
        (None, None, "medium"),
        (Decimal("999999"), "JPY", "medium"),
    ],
)
def test_severity_from_business_value(
    total: Decimal | None, currency: str | None, severity: str
) -> None:
    assert POLICY.severity_for(total, currency) == severity


def test_escalation_raises_severity_one_step_and_stops_at_critical() -> None:
    assert POLICY.escalated("low") == "medium"
    assert POLICY.escalated("critical") == "critical"
    assert POLICY.sla_for("critical") < POLICY.sla_for("low")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("routing: {kinds: {policy: finance}}\n", "sla_s"),
        ("routing: {kinds: {policy: finance}}\nsla_s: {low: 1}\n", "missing"),
        (
            "routing: {kinds: {nonsense: x}}\nsla_s: {low: 1, medium: 1, high: 1, critical: 1}\n",
            "routing.kinds",
        ),
        (
            "routing: {kinds: {}}\nsla_s: {low: 1, medium: 1, high: 1, critical: 1}\n"
            "severity: {value: {EUR: [3, 2, 1]}}\n",
            "three rising",
        ),
        ("limits: [\n", "cannot read"),
    ],
)
def test_a_bad_policy_file_names_the_file_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_policy(path)
    assert str(path) in str(caught.value)
