"""One builder per benchmark: its JSON (its own shape) as a RESULTS.md section.

The builders live by family (``connectors``, ``worker``, ``stack``); every target they hold a
figure to is in ``targets``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bench.sections.connectors import cdc_section, serde_section, webhooks_section
from bench.sections.stack import broker_section, capacity_section, pipeline_section
from bench.sections.worker import (
    inprocess_section,
    quix_section,
    quote_to_order_section,
    recovery_section,
    sweep_section,
)
from bench.table import Section

__all__ = ["BUILDERS"]

BUILDERS: dict[str, Callable[[Mapping[str, Any]], Section]] = {
    "serde": serde_section,
    "webhooks": webhooks_section,
    "cdc": cdc_section,
    "quote_to_order": quote_to_order_section,
    "inprocess": inprocess_section,
    "quix": quix_section,
    "recovery": recovery_section,
    "sweep": sweep_section,
    "pipeline": pipeline_section,
    "capacity": capacity_section,
    "broker": broker_section,
}
