"""Helpers shared by the dashboard, alert and Prometheus e2e tests: every PromQL expression used."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from interlock.instruments import Instruments
from ops.lag.exporter import LagExporter
from ops.lag.probe import GroupSnapshot

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "ops" / "grafana" / "dashboards"
RULES = ROOT / "ops" / "prometheus" / "rules" / "interlock.rules.yml"

#: Grafana variables, replaced by what a user selecting "All" over a short range would get.
GRAFANA_VARIABLES = {"$__rate_interval": "30s", "$flow": ".+", "$job": ".+"}


def substitute(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def dashboard_exprs() -> list[tuple[str, str]]:
    """(where, expr) for every target of every panel, variables substituted."""
    out = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                where = f"{path.stem}: {panel['title']} [{target['refId']}]"
                out.append((where, substitute(target["expr"])))
    return out


def rules() -> list[dict[str, str]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def rule_exprs() -> list[tuple[str, str]]:
    return [(rule.get("alert") or rule["record"], rule["expr"]) for rule in rules()]


class _NoGroups:
    def snapshot(self) -> list[GroupSnapshot]:
        return []


def metric_catalog() -> set[str]:
    """Every sample name Interlock's services and the lag exporter can expose."""
    registry = CollectorRegistry()
    Instruments(registry, "catalog")
    LagExporter(_NoGroups(), registry)
    names = set()
    for family in registry.collect():
        suffixes = {
            "counter": ["_total", "_created"],
            "histogram": ["_bucket", "_count", "_sum", "_created"],
            "gauge": [""],
        }.get(family.type, [""])
        names |= {family.name + s for s in suffixes}
    return names


def interlock_names(expr: str) -> set[str]:
    return set(re.findall(r"\binterlock_[a-z_]+\b", expr))


_COMPARISON = re.compile(r"^(?P<lhs>.+?)\s*(==|!=|>=|<=|>|<)\s*\(?[\d.\s*]+\)?$", re.DOTALL)


def inner_series(expr: str) -> list[str]:
    """The series an alert expression compares, which must exist even when nothing is wrong.

    An alert's expression is legitimately empty while all is well, so the e2e test evaluates
    what it is made of instead: each operand of a top-level ``and``, with its trailing comparison
    against a number removed (``x > 0.05`` -> ``x``), and the argument of ``absent(...)``.
    """
    out = []
    for operand in re.split(r"\s+and\s+", expr.strip()):
        operand = operand.strip()
        match = _COMPARISON.match(operand)
        if match:
            operand = match.group("lhs").strip()
        absent = re.fullmatch(r"absent\((?P<arg>.+)\)", operand, re.DOTALL)
        if absent:
            operand = absent.group("arg")
        out.append(operand)
    return out
