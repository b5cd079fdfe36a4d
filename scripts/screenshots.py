"""Render the console's screenshots for the docs (docs/images/console-*.png).

The console is served by a real uvicorn over sample cases held in memory (no broker needed:
the pages do not depend on where cases come from), and a headless Chromium signs in and takes
the pictures, as the browser tests do.

    .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import base64
import secrets
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402

from contracts.review import Case, Decision  # noqa: E402
from interlock.broker import free_port  # noqa: E402
from interlock.settings import ConsoleSettings, ConsoleUserSettings  # noqa: E402
from ops.review.console.app import ConsoleState, create_app  # noqa: E402
from ops.review.users import Users, hash_password  # noqa: E402
from tests.ops.review.browser import chromium, sign_in, wait_for_text  # noqa: E402
from tests.ops.review.samples import make_case  # noqa: E402

IMAGES = ROOT / "docs" / "images"
NOW = 1_767_600_000.0  # a fixed "now", so that ages and SLA countdowns are the same every run
PASSWORD = secrets.token_urlsafe(12)  # this run only


class SampleCases:
    """A case source over a fixed set of cases (the console's CaseSource protocol)."""

    problem: str | None = None

    def __init__(self, cases: list[Case]) -> None:
        self._cases = {c.case_id: c for c in cases}

    def cases(self) -> dict[str, Case]:
        return dict(self._cases)

    def get(self, case_id: str) -> Case | None:
        return self._cases.get(case_id)

    def running(self) -> bool:
        return True

    def is_caught_up(self) -> bool:
        return True


class NoDecisions:
    """A decision sink that keeps nothing: the screenshots decide nothing."""

    def send(self, decision: Decision) -> None:
        return None

    def problem(self) -> str | None:
        return None


def sample_cases() -> list[Case]:
    hour = 3600.0

    def at(opened_h: float, sla_h: float) -> dict[str, float]:
        opened = NOW - opened_h * hour
        return {"opened_at": opened, "updated_at": opened, "sla_due": NOW + sla_h * hour}

    return [
        make_case(
            "account_match",
            case_id="6f1c2a9e-0b1d-5c3e-9f41-2d7a8b9c0e11",
            status="escalated",
            severity="high",
            summary="Incoming account 'ACME GmbH' matches 'Acme GmbH' at 0.71 (threshold 0.85)",
            partition_key="acct-8841",
            quote_id="Q-2291",
            deal_id="D-7710",
            account_id="acct-8841",
            **at(5.2, -0.7),
        ),
        make_case(
            "policy",
            case_id="0a4b7c1d-2e3f-5a6b-8c9d-0e1f2a3b4c5d",
            summary="Discount 18% on quote Q-2305 is over the 15% limit",
            partition_key="acct-1204",
            account_id="acct-1204",
            deal_id="D-7731",
            quote_id="Q-2305",
            **at(3.1, 0.9),
        ),
        make_case(
            "credit_hold",
            case_id="9d8c7b6a-5f4e-5d3c-a2b1-0f9e8d7c6b5a",
            severity="critical",
            reason="VALIDATION_FAILED",
            summary="Quote Q-2310 (48,200.00 EUR) for a customer on credit hold",
            partition_key="acct-3307",
            account_id="acct-3307",
            deal_id="D-7740",
            quote_id="Q-2310",
            **at(1.4, 2.6),
        ),
        make_case(
            "validation",
            case_id="3e2d1c0b-9a8f-5e7d-b6c5-4a3b2c1d0e9f",
            team="integration",
            severity="medium",
            reason="VALIDATION_MISSING_FIELD",
            summary="Quote Q-2318 has no currency on line 2",
            partition_key="acct-5521",
            account_id="acct-5521",
            deal_id="D-7752",
            quote_id="Q-2318",
            **at(0.6, 7.4),
        ),
        make_case(
            "parked_timeout",
            case_id="7b6a5f4e-3d2c-5b1a-9f8e-7d6c5b4a3f2e",
            severity="low",
            reason="JOIN_TIMEOUT",
            summary="Quote Q-2320 waited 5 min for account acct-9910",
            partition_key="acct-9910",
            account_id="acct-9910",
            deal_id="D-7760",
            quote_id="Q-2320",
            **at(0.2, 23.8),
        ),
    ]


def full_page(driver: WebDriver, path: Path) -> None:
    """A screenshot of the whole page, through Chromium's DevTools (beyond the viewport)."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> None:
    cases = sample_cases()
    users = Users(
        {
            "maria": ConsoleUserSettings(
                role="operator",
                teams=["sales-ops", "finance"],
                password_hash=hash_password(PASSWORD),
            )
        }
    )
    state = ConsoleState(SampleCases(cases), NoDecisions(), users, clock=lambda: NOW)
    app = create_app(state, ConsoleSettings(), secret_key="screenshots-" + "k" * 24)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    IMAGES.mkdir(parents=True, exist_ok=True)
    try:
        with chromium() as driver:
            sign_in(driver, url, "maria", PASSWORD)
            driver.get(f"{url}/queue?team=all")
            wait_for_text(driver, "Queue")
            full_page(driver, IMAGES / "console-queue.png")
            driver.get(f"{url}/cases/{cases[0].case_id}")
            wait_for_text(driver, "Match evidence")
            full_page(driver, IMAGES / "console-case.png")
            driver.get(f"{url}/cases/{cases[1].case_id}")
            wait_for_text(driver, "Quote")
            full_page(driver, IMAGES / "console-policy-case.png")
    finally:
        server.should_exit = True
        thread.join(10)


if __name__ == "__main__":
    main()
