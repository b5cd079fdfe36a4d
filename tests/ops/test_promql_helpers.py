"""The rule used by the e2e test to find the series behind an alert expression."""

from __future__ import annotations

import pytest

from tests.ops.promql import inner_series, rule_exprs, substitute

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("expr", "inner"),
    [
        ('x{status="WARN"} == 1', ['x{status="WARN"}']),
        ("sum by (a) (rate(y[5m])) / sum by (a) (rate(z[5m])) > 0.05",
         ["sum by (a) (rate(y[5m])) / sum by (a) (rate(z[5m]))"]),
        ("r:1h > (14.4 * 0.01) and r:5m > (14.4 * 0.01)", ["r:1h", "r:5m"]),
        ('absent(up{job="w"})', ['up{job="w"}']),
        ("histogram_quantile(0.99, x)", ["histogram_quantile(0.99, x)"]),
    ],
)  # fmt: skip
def test_inner_series(expr: str, inner: list[str]) -> None:
    assert inner_series(expr) == inner


def test_every_alert_reduces_to_comparison_free_series() -> None:
    for name, expr in rule_exprs():
        for part in inner_series(expr):
            assert not part.rstrip().endswith(("== 1", "> 0", "== 2")), (name, part)


def test_grafana_variables_are_substituted() -> None:
    assert substitute('rate(x{job=~"$job"}[$__rate_interval])') == 'rate(x{job=~".+"}[30s])'
