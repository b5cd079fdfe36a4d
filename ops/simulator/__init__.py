"""The simulator: a mid-market company's CRM and ERP played against Interlock, with ground truth.

See ``ops/simulator/README.md``: the scenario, the injected faults, the ground truth and the
invariants ``interlock simulate check`` evaluates.
"""

from ops.simulator.invariants import InvariantResult, check_invariants, render_results
from ops.simulator.live import (
    LiveMonitor,
    LiveView,
    RunSummary,
    Snapshot,
    build_view,
    parse_samples,
    render_summary,
    render_view,
    scrape,
    summarize,
    take_snapshot,
)
from ops.simulator.observed import Observed
from ops.simulator.scenario import FaultMix, Scenario
from ops.simulator.truth import GroundTruth, Recorded, load_run, save_run

__all__ = [
    "FaultMix",
    "GroundTruth",
    "InvariantResult",
    "LiveMonitor",
    "LiveView",
    "Observed",
    "Recorded",
    "RunSummary",
    "Scenario",
    "Snapshot",
    "build_view",
    "check_invariants",
    "load_run",
    "parse_samples",
    "render_results",
    "render_summary",
    "render_view",
    "save_run",
    "scrape",
    "summarize",
    "take_snapshot",
]
