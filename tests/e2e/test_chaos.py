"""The fault suite's short subset: one seeded fault case through ``ops.chaos``, end to end.

``make chaos`` runs every case (``ops/chaos/cases.py``); here the ERP API fails with 500, then
with 429 + ``Retry-After``, in a short simulated run, and the runner must see every invariant
hold, nothing lost or doubled, and the lag come back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.chaos.cases import FaultCase, Planned
from ops.chaos.report import write_report
from ops.chaos.runner import run_case

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(420)
def test_an_erp_outage_of_500s_then_429s_loses_and_doubles_nothing(tmp_path: Path) -> None:
    case = FaultCase(
        "erp-down-short",
        "the ERP API answers 500 for 8 s, then 429 with Retry-After for 8 s",
        "api",
        "erp",
        hold_s=8.0,
        statuses=(500, 429),
        run_s=40.0,
    )
    outcome = run_case(Planned(case, at_s=10.0, seed=7), tmp_path / "run", rate=80.0)
    up_log = (tmp_path / "run" / "up.log").read_text()
    assert outcome.held, (outcome, up_log[-4000:])
    assert outcome.orders_expected > 0
    assert outcome.unexpected_dead_letters == 0
    # the outage really happened: the simulator's fake ERP refused calls with both statuses
    truth = (tmp_path / "run" / ".interlock" / "simulation.json").read_text()
    assert '"erp:500"' in truth, up_log[-2000:]
    assert '"erp:429"' in truth, up_log[-2000:]
    assert outcome.recovery_s is not None
    page = write_report([outcome], tmp_path / "report", seed=7, rate=80.0)
    assert "| erp-down-short |" in page.read_text()
