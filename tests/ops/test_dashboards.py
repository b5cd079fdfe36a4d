"""Grafana dashboards: generated JSON is committed, well-formed, and queries what exists."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ops.grafana.build import dashboards, render
from tests.ops.promql import (
    DASHBOARDS,
    ROOT,
    dashboard_exprs,
    interlock_names,
    metric_catalog,
    rules,
)

pytestmark = pytest.mark.unit

GRAFANA = ROOT / "ops" / "grafana"


def test_committed_json_equals_the_generated_one() -> None:
    generated = dashboards()
    committed = {p.name for p in DASHBOARDS.glob("*.json")}
    assert committed == set(generated), "run: python -m ops.grafana.build"
    for name, board in generated.items():
        assert (DASHBOARDS / name).read_text() == render(board), (
            f"{name} is stale: run python -m ops.grafana.build"
        )


@pytest.mark.parametrize("path", sorted(DASHBOARDS.glob("*.json")), ids=lambda p: p.name)
def test_dashboard_is_well_formed(path: Path) -> None:
    board = json.loads(path.read_text())
    assert board["uid"]
    assert board["title"].startswith("Interlock / ")
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "prometheus"
        pos = panel["gridPos"]
        assert pos["x"] >= 0, panel["title"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
    for var in board["templating"]["list"]:
        assert f"${var['name']}" in json.dumps(board["panels"]), f"unused variable {var['name']}"


def test_datasource_uid_is_the_provisioned_one() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())
    assert [d["uid"] for d in provisioned["datasources"]] == ["prometheus"]
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/provider.yaml").read_text())
    assert provider["providers"][0]["type"] == "file"


def test_the_sre_overview_shows_what_an_sre_needs() -> None:
    board = dashboards()["interlock-sre-overview.json"]
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p["targets"])
    for metric in (
        "interlock_events_consumed_total",
        "interlock_consumer_lag_messages",
        "interlock_consumer_lag_seconds",
        "interlock_handoff_latency_seconds_bucket",
        "interlock_dead_letters_total",
        "interlock_webhook_requests_total",
        "interlock_sink_calls_total",
        "interlock_circuit_breaker_state",
    ):
        assert metric in exprs, metric
    slo = next(p for p in board["panels"] if "SLO (1 s)" in p["title"])
    assert {"color": "red", "value": 1.0} in slo["fieldConfig"]["defaults"]["thresholds"]["steps"]


def test_every_metric_queried_is_one_interlock_exports() -> None:
    catalog = metric_catalog()
    used = {n for _, e in dashboard_exprs() for n in interlock_names(e)}
    used |= {n for r in rules() for n in interlock_names(r["expr"])}
    assert used, "no interlock metric queried"
    assert used <= catalog, f"unknown metrics: {sorted(used - catalog)}"


def test_every_dashboard_expression_parses(tmp_path: Path) -> None:
    # promtool parses each expression when it checks a rule file: one recording rule per query.
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: run `make system-tools`"
    recorded = [
        {"record": f"dashboard:query_{i}", "expr": expr}
        for i, (_, expr) in enumerate(dashboard_exprs())
    ]
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": recorded}]}))
    result = subprocess.run([exe, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
