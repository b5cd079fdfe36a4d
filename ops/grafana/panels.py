"""Building blocks of Interlock's Grafana dashboards: panels, layout, variables, datasource."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DASHBOARD_DIR",
    "DATASOURCE",
    "HANDOFF_SLO_SECONDS",
    "RATE",
    "Panel",
    "dashboard",
    "variable",
]

DASHBOARD_DIR = Path(__file__).parent / "dashboards"
#: The provisioned Prometheus datasource (provisioning/datasources/prometheus.yaml).
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
RATE = "[$__rate_interval]"
HANDOFF_SLO_SECONDS = 1.0


@dataclass
class Panel:
    """One panel: a title, PromQL queries (expr, legend) and how to show them."""

    title: str
    queries: list[tuple[str, str]]
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    height: int = 8
    description: str = ""
    thresholds: list[tuple[float, str]] = field(default_factory=list)
    mappings: list[dict[str, Any]] = field(default_factory=list)


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    steps += [{"color": color, "value": value} for value, color in panel.thresholds]
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "thresholds": {"mode": "absolute", "steps": steps},
        "mappings": panel.mappings,
    }
    if panel.kind == "timeseries" and panel.thresholds:
        defaults["custom"] = {"thresholdsStyle": {"mode": "line+area"}}
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom"}}
        if panel.kind == "timeseries"
        else {},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
                "range": True,
            }
            for i, (expr, legend) in enumerate(panel.queries)
        ],
    }


def _layout(panels: list[Panel]) -> Iterator[dict[str, Any]]:
    x = y = row_height = 0
    for panel_id, panel in enumerate(panels, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        yield _panel_json(panel, panel_id, x, y)
        x += panel.width
        row_height = max(row_height, panel.height)


def variable(name: str, label: str, query: str | None = None, values: str = "") -> dict[str, Any]:
    if query is None:
        return {
            "name": name,
            "label": label,
            "type": "custom",
            "query": values,
            "multi": True,
            "includeAll": True,
            "allValue": ".+",
            "current": {"text": "All", "value": "$__all"},
        }
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": "variable"},
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": ".+",
        "current": {"text": "All", "value": "$__all"},
    }


def dashboard(
    uid: str, title: str, panels: list[Panel], variables: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": ["interlock"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "panels": list(_layout(panels)),
    }
