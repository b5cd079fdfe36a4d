"""The exception desk end to end (issue #26, must show 1 and 2): the real worker opens the cases
from input events, an operator decides them in the real console in a headless Chromium, and the
worker carries the decisions out on the same Kafka topics.

One worker, one console and one browser serve the module: the console's case store and decision
sender use the worker's topic prefix, so what the operator sees is what the worker wrote, and
what the operator clicks is what the worker applies.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import typer
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from typer.testing import CliRunner

from contracts import AccountEvent, OrderEvent, QuoteEvent, decode
from contracts.review import Case
from interlock.settings import Settings
from ops.review.users import Users
from processors.linking import LINK_EVENT
from processors.review import OVERRIDE_HEADER
from processors.topic_names import ProcessorTopics
from processors.trace import make_trace_command
from tests.ops.review.browser import chromium, wait_for_text
from tests.ops.review.conftest import (  # noqa: F401  (console_users: a fixture)
    ConsoleServer,
    console_users,
    read_decisions,
    serve,
)
from tests.ops.review.test_console_browser import open_case, press
from tests.processors.conftest import ProcessorsEnv, Worker, all_topics, create_topics
from tests.processors.events import account_event, quote_event, vague_account_match
from tests.processors.test_review_worker import over_discount

pytestmark = pytest.mark.e2e

OPERATOR = "alice"  # operator of sales-ops and finance (tests/ops/review/conftest.py)
REASON = "Discount not agreed with finance"


@dataclass
class Desk:
    """The worker's topics and producer, the worker, the console on its topics, a browser."""

    env: ProcessorsEnv
    worker: Worker
    console: ConsoleServer
    browser: WebDriver


@pytest.fixture(scope="module")
def desk(
    settings: Settings,
    admin: AdminClient,
    console_users: Users,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Desk]:
    """Fresh processors topics (as ``proc_env`` makes them), one worker on them, the console
    served over the same ``<prefix>review.cases``/``review.decisions``, one headless Chromium."""
    tag = uuid.uuid4().hex[:10]
    topics = ProcessorTopics(f"p{tag}.")
    create_topics(admin, all_topics(topics))
    producer = Producer({**settings.kafka.librdkafka(), "linger.ms": 5, "acks": "all"})
    env = ProcessorsEnv(settings, topics, f"app-{tag}", tmp_path_factory.mktemp("desk"), producer)
    # a short grace: a quote whose account is in review must wait past it all the same
    worker = env.start_worker(INTERLOCK_PROCESSORS__JOIN_GRACE_S="3")
    processors = settings.processors.model_copy(update={"topic_prefix": topics.prefix})
    on_worker_topics = settings.model_copy(update={"processors": processors})
    server = serve(on_worker_topics, console_users)
    try:
        console = next(server)
        with chromium() as browser:
            yield Desk(env, worker, console, browser)
    finally:
        server.close()
        worker.stop(signal.SIGKILL if worker.process.poll() is None else signal.SIGTERM, 5)


def console_case(desk: Desk, wanted: Callable[[Case], bool], timeout: float = 90) -> Case:
    """The first case in the console's store that is ``wanted``, once the worker wrote it."""
    found: list[Case] = []

    def check(cases: dict[str, Case]) -> bool:
        found[:] = [c for c in cases.values() if wanted(c)]
        return bool(found)

    assert desk.console.store.wait_for(check, timeout), desk.worker.output()
    return found[0]


def wait_status(desk: Desk, case_id: str, status: str) -> Case:
    """Case ``case_id`` once the console's store holds it in ``status`` (the worker applied)."""
    return console_case(desk, lambda c: c.case_id == case_id and c.status == status)


def wait_audit(desk: Desk, decision: str, correlation_id: str) -> dict[str, Any]:
    """The worker's first ``audit.decisions`` record of ``decision`` about ``correlation_id``."""

    def matching(values: list[bytes | None]) -> list[dict[str, Any]]:
        records = [orjson.loads(v) for v in values if v]
        return [
            r
            for r in records
            if r.get("decision") == decision and r.get("correlation_id") == correlation_id
        ]

    env = desk.env
    records = env.wait_for_raw(
        env.topics.audit, lambda recs: bool(matching([r.value for r in recs])), timeout=60
    )
    found = matching([r.value for r in records])
    assert found, f"no {decision} of {correlation_id}: {desk.worker.output()}"
    return found[0]


def over_limit(quote_id: str, account_id: str) -> QuoteEvent:
    """An accepted quote with a 40 % discount, over the policy's limit (finance approves)."""
    quote = over_discount(quote_id, account_id)
    assert isinstance(quote, QuoteEvent)
    return quote


def orders_for(env: ProcessorsEnv, quote_id: str) -> list[OrderEvent]:
    return [
        o
        for o in env.events(env.topics.create_order)
        if isinstance(o, OrderEvent) and o.payload.quote_id == quote_id
    ]


def trace(desk: Desk, wanted: str, shows: Callable[[str], bool]) -> str:
    """``interlock trace WANTED`` (the CLI's command, on the worker's topics) until it ``shows``
    what is expected; its output."""
    app = typer.Typer()
    app.command()(make_trace_command(lambda: desk.env.settings))
    deadline = time.monotonic() + 30
    while True:
        result = CliRunner().invoke(
            app, [wanted, "--prefix", desk.env.topics.prefix], env={"COLUMNS": "400"}
        )
        if (result.exit_code == 0 and shows(result.output)) or time.monotonic() > deadline:
            return result.output
        time.sleep(0.5)


def test_an_operator_links_a_vague_match_and_the_parked_quote_becomes_one_order(
    desk: Desk,
) -> None:
    env, console, browser = desk.env, desk.console, desk.browser
    t = env.topics
    crm, erp = vague_account_match()
    env.send(t.account, crm)
    env.send(t.account, erp)
    # the worker finds the match too vague to link alone: a case, and the console shows it
    case = console_case(desk, lambda c: c.kind == "account_match")
    assert (case.team, case.account_id, case.status) == ("sales-ops", "crm-initech", "open")
    match = case.context.match
    assert match is not None
    assert match.score < match.threshold
    # the candidate is the other side of the account whose event found the match (which of
    # the two the worker read last): linking to it links the pair either way
    (candidate,) = [c.account_id for c in match.candidates]
    assert {candidate, case.partition_key} == {"crm-initech", "erp-initech"}

    env.send(t.quote, quote_event("q-i", "crm-initech"))
    parked = wait_audit(desk, "parked", "q-i")
    assert parked["details"]["waiting_for"] == "link"
    assert orders_for(env, "q-i") == []

    # an operator signs in, opens the case from the queue and links the two accounts
    open_case(browser, console, case.case_id)
    wait_for_text(browser, "Match evidence")
    link = browser.find_elements(
        By.XPATH, f"//article[contains(., '{candidate}')]//button[@name='do' and @value='link']"
    )
    assert len(link) == 1
    link[0].click()
    wait_for_text(browser, f"{candidate} by {OPERATOR}")

    # the worker links the accounts and orders the parked quote: exactly one ERP order (it is
    # released from parking, or, where a rebalance under load redelivers the quote after the
    # link, ordered from the redelivery; the release's audit is test_parking_flow's)
    env.wait_for(t.create_order, lambda _: bool(orders_for(env, "q-i")))
    decided = wait_status(desk, case.case_id, "linked")
    assert decided.decision is not None
    assert (decided.decision.action, decided.decision.by) == ("link", OPERATOR)
    (decision,) = [d for d in read_decisions(console.settings) if d.case_id == case.case_id]
    assert (decision.action, decision.target, decision.by) == ("link", candidate, OPERATOR)
    links = {
        e.payload.account_id: e.payload
        for e in env.events(t.account)
        if isinstance(e, AccountEvent)
        and e.event_type == LINK_EVENT
        and e.causation_id == decision.decision_id
    }
    assert set(links) == {"crm-initech", "erp-initech"}
    assert links["crm-initech"].erp_customer_number == "C-88"
    assert links["erp-initech"].crm_record_id == "co-8"
    orders = orders_for(env, "q-i")
    assert [(o.payload.account_id, o.payload.erp_customer_number) for o in orders] == [
        ("crm-initech", "C-88")
    ]

    # the console shows the decision applied; the quote's trace shows who took it
    browser.refresh()
    wait_for_text(browser, "applied.")
    output = trace(desk, "q-i", lambda out: "decision: case_link" in out)
    decided_lines = [line for line in output.splitlines() if "decision: case_link" in line]
    assert len(decided_lines) == 1, output
    assert f'"by": "{OPERATOR}"' in decided_lines[0], output
    assert t.create_order in output, output
    assert "waiting:" not in output, output


def test_finance_rejects_a_quote_over_the_discount_limit_and_approves_another(
    desk: Desk,
) -> None:
    env, console, browser = desk.env, desk.console, desk.browser
    t = env.topics
    env.send(t.account, account_event("acct-no"), account_event("acct-ok"))
    env.send(t.quote, over_limit("q-no", "acct-no"), over_limit("q-ok", "acct-ok"))
    quotes = {"q-no", "q-ok"}
    console_case(desk, lambda c: c.kind == "policy" and c.quote_id == "q-no")
    console_case(desk, lambda c: c.kind == "policy" and c.quote_id == "q-ok")
    cases = {
        c.quote_id: c
        for c in console.store.cases().values()
        if c.kind == "policy" and c.quote_id in quotes
    }
    assert {c.team for c in cases.values()} == {"finance"}
    assert orders_for(env, "q-no") == orders_for(env, "q-ok") == []

    # reject one with a reason, approve the other, each from the queue
    open_case(browser, console, cases["q-no"].case_id)
    reject_form = browser.find_element(
        By.XPATH, "//form[.//input[@name='action' and @value='reject']]"
    )
    reject_form.find_element(By.NAME, "reason").send_keys(REASON)
    press(browser, "reject")
    wait_for_text(browser, f"by {OPERATOR}:")  # sent (pending, or applied already)
    open_case(browser, console, cases["q-ok"].case_id)
    press(browser, "approve")
    wait_for_text(browser, f"by {OPERATOR}:")  # sent (pending, or applied already)

    updates = env.wait_for(
        t.update_deal,
        lambda ev: any(isinstance(u, OrderEvent) and u.payload.quote_id == "q-no" for u in ev),
    )
    env.wait_for(t.create_order, lambda _: bool(orders_for(env, "q-ok")))
    decided_no = wait_status(desk, cases["q-no"].case_id, "rejected")
    decided_ok = wait_status(desk, cases["q-ok"].case_id, "approved")
    assert decided_no.decision is not None
    assert decided_ok.decision is not None
    assert (decided_no.decision.by, decided_no.decision.reason) == (OPERATOR, REASON)

    # rejected: no order, and the CRM deal is told why
    assert orders_for(env, "q-no") == []
    (update,) = [u for u in updates if isinstance(u, OrderEvent) and u.payload.quote_id == "q-no"]
    assert (update.payload.crm_record_id, update.payload.status) == ("deal-q-no", "REJECTED")
    assert update.payload.status_reason == f"rejected by {OPERATOR}: {REASON}"
    # approved: exactly one order, carrying the override
    assert len(orders_for(env, "q-ok")) == 1
    (raw_order,) = [
        r
        for r in env.read_records(t.create_order)
        if r.value and getattr(decode(r.value).payload, "quote_id", None) == "q-ok"
    ]
    override = orjson.loads(dict(raw_order.headers)[OVERRIDE_HEADER] or b"{}")
    assert (override["by"], override["case_id"]) == (OPERATOR, cases["q-ok"].case_id)
    audit = [
        r["details"] for r in env.audit() if "case_decision" in r and r["ids"]["quote_id"] in quotes
    ]
    assert sorted((d["by"], d["action"]) for d in audit) == [
        (OPERATOR, "approve"),
        (OPERATOR, "reject"),
    ]
    browser.refresh()  # the approved case's page
    wait_for_text(browser, "applied.")
