"""The fault suite's short subset: one seeded fault case through ``ops.chaos``, end to end.

``make chaos`` runs every case (``ops/chaos/cases.py``); here, in one short simulated run, the
sinks are killed (SIGKILL) while the ERP API answers 429 with ``Retry-After``: ``up`` restarts
them, and the runner must see every invariant hold, nothing lost or doubled, and the lag come
back. (The worker killed under load: ``make chaos``, case ``kill-worker``, and
``tests/processors/test_crash_rebalance.py``.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ops.chaos.cases import FaultCase, Planned
from ops.chaos.report import write_report
from ops.chaos.runner import run_case

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(420)
def test_sinks_killed_during_an_erp_outage_lose_and_double_nothing(tmp_path: Path) -> None:
    case = FaultCase(
        "kill-sinks-in-erp-outage",
        "SIGKILL of the sinks while the ERP API answers 429 with Retry-After",
        "kill",
        "sinks",
        run_s=30.0,
        up_args=("--fault", "erp:429:14@4"),
    )
    outcome = run_case(Planned(case, at_s=10.0, seed=7), tmp_path / "run", rate=60.0)
    up_log = (tmp_path / "run" / "up.log").read_text()
    assert outcome.held, (outcome, up_log[-4000:])
    assert outcome.orders_expected > 0
    assert outcome.unexpected_dead_letters == 0
    assert re.search(r"sinks killed by SIGKILL; restart 1 in [\d.]+ s", up_log), up_log[-3000:]
    assert re.search(r"sinks restarted \(pid \d+, restart 1\)", up_log), up_log[-3000:]
    # the outage really happened: the fake ERP refused calls with 429
    truth = (tmp_path / "run" / ".interlock" / "simulation.json").read_text()
    assert '"erp:429"' in truth, up_log[-2000:]
    page = write_report([outcome], tmp_path / "report", seed=7, rate=60.0)
    assert "| kill-sinks-in-erp-outage |" in page.read_text()
