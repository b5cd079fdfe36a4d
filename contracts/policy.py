"""The commercial policy gate and the exception desk's routing, as data (``policy.yaml``).

Limits say what an accepted quote may do without a person's approval (discount, order total
per currency, a new customer's first order); routing says which team owns a case of each kind
or reason; severity comes from business impact (order value per currency) and sets the SLA a
decision is due in. Everything here is pure: the worker calls it with a quote and a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from contracts.errors import ConfigError
from contracts.models import Quote
from contracts.registry import CONTRACTS_DIR
from contracts.review import SEVERITIES, CaseKind, Severity
from contracts.yamlfile import read_yaml

__all__ = [
    "POLICY_PATH",
    "CommercialPolicy",
    "Limits",
    "PolicyBreach",
    "Routing",
    "SeverityRules",
    "load_policy",
    "quote_discount_pct",
]

POLICY_PATH = CONTRACTS_DIR / "policy.yaml"
_STRICT = ConfigDict(extra="forbid", frozen=True)


class Limits(BaseModel):
    """What a quote may do without approval; a currency not listed has no amount limit."""

    model_config = _STRICT

    max_discount_pct: Decimal | None = Field(default=None, ge=0, le=100)
    order_total: dict[str, Decimal] = Field(default_factory=dict)
    first_order_total: dict[str, Decimal] = Field(default_factory=dict)


class Routing(BaseModel):
    """Owning team by case kind; a reason code (or validation issue code) may override it."""

    model_config = _STRICT

    kinds: dict[CaseKind, str]
    reasons: dict[str, str] = Field(default_factory=dict)
    default: str = "integration"


class SeverityRules(BaseModel):
    """Severity from order value: per currency, the totals at which medium, high, critical."""

    model_config = _STRICT

    default: Severity = "medium"
    value: dict[str, list[Decimal]] = Field(default_factory=dict)

    @field_validator("value")
    @classmethod
    def _three_rising(cls, value: dict[str, list[Decimal]]) -> dict[str, list[Decimal]]:
        for currency, steps in value.items():
            if len(steps) != 3 or steps != sorted(steps):
                raise ValueError(
                    f"{currency}: give three rising totals (medium, high, critical), got {steps}"
                )
        return value


@dataclass(frozen=True, slots=True)
class PolicyBreach:
    """One limit a quote is over: which, the limit and the quote's value (as text)."""

    limit: str
    allowed: str
    actual: str
    currency: str | None = None

    def __str__(self) -> str:
        unit = "%" if self.limit == "max_discount_pct" else f" {self.currency or ''}".rstrip()
        return f"{self.limit}: {self.actual}{unit} over {self.allowed}{unit}"

    def as_json(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "allowed": self.allowed,
            "actual": self.actual,
            "currency": self.currency,
        }


def quote_discount_pct(quote: Quote) -> Decimal:
    """The quote's largest discount in percent: overall or a line's.

    Overall is ``discount_total / subtotal``, the subtotal being the lines' value before
    discounts (as the canonical quote carries it).
    """
    best = Decimal(0)
    if quote.discount_total and quote.subtotal and quote.subtotal > 0:
        best = quote.discount_total * 100 / quote.subtotal
    for line in quote.lines:
        if line.discount_percent is not None and line.discount_percent > best:
            best = line.discount_percent
    return best.quantize(Decimal("0.01"))


class CommercialPolicy(BaseModel):
    """The whole file: limits, routing, severity rules and SLAs."""

    model_config = _STRICT

    limits: Limits = Field(default_factory=Limits)
    routing: Routing
    severity: SeverityRules = Field(default_factory=SeverityRules)
    sla_s: dict[Severity, float]

    @field_validator("sla_s")
    @classmethod
    def _every_severity(cls, value: dict[Severity, float]) -> dict[Severity, float]:
        missing = [s for s in SEVERITIES if s not in value]
        if missing:
            raise ValueError(f"an SLA is needed for every severity; missing {missing}")
        if any(v <= 0 for v in value.values()):
            raise ValueError("SLAs are positive seconds")
        return value

    def breaches(self, quote: Quote, first_order: bool) -> list[PolicyBreach]:
        """Every limit ``quote`` is over (empty: it may be ordered without approval)."""
        found: list[PolicyBreach] = []
        limits = self.limits
        if limits.max_discount_pct is not None:
            discount = quote_discount_pct(quote)
            if discount > limits.max_discount_pct:
                found.append(
                    PolicyBreach("max_discount_pct", str(limits.max_discount_pct), str(discount))
                )
        currency = quote.currency
        total = quote.total
        if currency and total is not None:
            cap = limits.order_total.get(currency)
            if cap is not None and total > cap:
                found.append(PolicyBreach("order_total", str(cap), str(total), currency))
            first = limits.first_order_total.get(currency)
            if first_order and first is not None and total > first:
                found.append(PolicyBreach("first_order_total", str(first), str(total), currency))
        return found

    def team_for(self, kind: CaseKind, *reasons: str) -> str:
        """The team that owns a case: the first reason routed explicitly, else by kind."""
        for reason in reasons:
            team = self.routing.reasons.get(reason)
            if team:
                return team
        return self.routing.kinds.get(kind, self.routing.default)

    def severity_for(self, total: Decimal | None, currency: str | None) -> Severity:
        """Severity from the order value; the default when there is no amount to weigh."""
        steps = self.severity.value.get(currency or "")
        if total is None or not steps:
            return self.severity.default
        level: Severity = "low"
        for step, name in zip(steps, SEVERITIES[1:], strict=True):
            if total >= step:
                level = name
        return level

    def sla_for(self, severity: Severity) -> float:
        """Seconds a case of ``severity`` may wait for a decision."""
        return self.sla_s[severity]

    @staticmethod
    def escalated(severity: Severity) -> Severity:
        """One step up (critical stays critical)."""
        index = SEVERITIES.index(severity)
        return SEVERITIES[min(index + 1, len(SEVERITIES) - 1)]


def load_policy(path: Path | None = None) -> CommercialPolicy:
    """Load and validate ``policy.yaml``; errors name the file and the field."""
    path = path or POLICY_PATH
    raw = read_yaml(path, "the commercial policy")
    try:
        return CommercialPolicy.model_validate(raw)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc
