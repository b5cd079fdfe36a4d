"""An operator in a real headless Chromium: sign in, find the case, decide it.

The console runs on a real uvicorn over real Kafka; cases are written to review.cases with the
contract's encoder, and decisions are read back from review.decisions.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.ops.review.browser import chromium, sign_in, wait_for_text
from tests.ops.review.conftest import (
    PASSWORD,
    ConsoleServer,
    read_decisions,
    wait_for_decisions,
)
from tests.ops.review.samples import make_case

pytestmark = pytest.mark.e2e

SCRIPT = "<script>window.__pwned = 1</script>"
IMAGE = '<img src="/x" onerror="window.__pwned = 2">'


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


def open_case(browser: WebDriver, console: ConsoleServer, case_id: str) -> None:
    """From the queue, as a person does: the case's row, then its page."""
    sign_in(browser, console.url, "alice", PASSWORD)
    browser.get(f"{console.url}/queue")
    browser.find_element(By.LINK_TEXT, case_id[:8]).click()
    wait_for_text(browser, "Decide")
    assert browser.current_url == f"{console.url}/cases/{case_id}"


def press(browser: WebDriver, action: str) -> None:
    browser.find_element(By.CSS_SELECTOR, f"button[name=do][value={action}]").click()


def test_an_operator_approves_a_case_and_a_double_click_is_one_decision(
    console: ConsoleServer, browser: WebDriver
) -> None:
    case = make_case("policy", team="finance", summary="Discount 18% over the 15% limit")
    console.publish(case)

    open_case(browser, console, case.case_id)
    body = browser.find_element(By.TAG_NAME, "body").text
    for shown in ("Pump", "10980.00 EUR", "NET30", "ERP owns", "CRM owns", "actual"):
        assert shown in body
    press(browser, "approve")
    wait_for_text(browser, "sent, pending")
    press(browser, "approve")  # the operator clicks again before the worker applied it
    wait_for_text(browser, "sent, pending")

    decisions = wait_for_decisions(console.settings, 2)
    mine = [d for d in decisions if d.case_id == case.case_id]
    assert len(mine) == 2
    assert {d.decision_id for d in mine} == {mine[0].decision_id}
    assert {(d.action, d.by, d.partition_key) for d in mine} == {
        ("approve", "alice", case.partition_key)
    }

    # the worker applies it: the case's next state carries the decision
    applied = case.model_copy(update={"status": "approved", "decision": mine[0], "version": 2})
    console.publish(applied)
    browser.refresh()
    wait_for_text(browser, "applied.")
    assert browser.find_elements(By.CSS_SELECTOR, "button[value=approve]") == []


def test_reject_with_a_reason_and_link_to_a_candidate(
    console: ConsoleServer, browser: WebDriver
) -> None:
    policy = make_case("policy", team="finance")
    match = make_case("account_match", team="sales-ops")
    console.publish(policy, match)
    before = len(read_decisions(console.settings))

    open_case(browser, console, policy.case_id)
    reject_form = browser.find_element(
        By.XPATH, "//form[.//input[@name='action' and @value='reject']]"
    )
    reject_form.find_element(By.NAME, "reason").send_keys("Margin below the floor")
    press(browser, "reject")
    wait_for_text(browser, "sent, pending")

    open_case(browser, console, match.case_id)
    wait_for_text(browser, "Acme Holding")
    second = browser.find_elements(By.XPATH, "//article[contains(., 'acct-acme-2')]//button")
    assert len(second) == 1
    second[0].click()
    wait_for_text(browser, "acct-acme-2 by alice")

    ours = {policy.case_id, match.case_id}
    decisions = [d for d in wait_for_decisions(console.settings, before + 2) if d.case_id in ours]
    assert sorted((d.action, d.case_id, d.reason, d.target, d.by) for d in decisions) == [
        ("link", match.case_id, None, "acct-acme-2", "alice"),
        ("reject", policy.case_id, "Margin below the floor", None, "alice"),
    ]


def test_crm_text_is_shown_escaped_and_no_script_runs(
    console: ConsoleServer, browser: WebDriver
) -> None:
    hostile = make_case("account_match", team="sales-ops", summary=f"Acme {SCRIPT}")
    fields = hostile.context.accounts
    assert fields is not None
    fields.fields[0].crm = f"Acme {SCRIPT}{IMAGE}"
    console.publish(hostile)

    sign_in(browser, console.url, "alice", PASSWORD)
    browser.get(f"{console.url}/queue")
    wait_for_text(browser, f"Acme {SCRIPT}")
    open_case(browser, console, hostile.case_id)
    body = browser.find_element(By.TAG_NAME, "body").text
    assert f"Acme {SCRIPT}{IMAGE}" in body  # shown as text, as the CRM holds it
    assert browser.find_elements(By.CSS_SELECTOR, "main script, main img") == []
    assert browser.execute_script("return window.__pwned === undefined")
