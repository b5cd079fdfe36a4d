"""The console over HTTP (real uvicorn, real Kafka): sign-in, CSRF, roles, 4xx, probes, API."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from interlock.settings import ProcessorSettings
from ops.review.users import Users
from tests.ops.review.conftest import (
    ALICE_TOKEN,
    PASSWORD,
    ConsoleServer,
    read_decisions,
    serve,
)
from tests.ops.review.samples import make_case

pytestmark = pytest.mark.integration


@pytest.fixture
def anonymous(console: ConsoleServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console.url, follow_redirects=False, timeout=10) as client:
        yield client


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None, "no CSRF token on the page"
    return match.group(1)


def signed_in(console: ConsoleServer, name: str) -> httpx.Client:
    client = httpx.Client(base_url=console.url, follow_redirects=False, timeout=10)
    token = csrf_of(client.get("/login").text)
    answer = client.post("/login", data={"csrf": token, "name": name, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    return client


def test_no_anonymous_reads_or_writes(console: ConsoleServer, anonymous: httpx.Client) -> None:
    case = make_case("policy")
    console.publish(case)

    page = anonymous.get(f"/cases/{case.case_id}")
    assert page.status_code == 303
    assert page.headers["location"] == f"/login?next=/cases/{case.case_id}"
    assert anonymous.get("/queue").status_code == 303
    assert anonymous.get("/api/cases").status_code == 401
    assert anonymous.get("/api/cases", headers={"authorization": "Bearer nope"}).status_code == 401

    # a POST without a session is refused before anything else
    bare = anonymous.post(f"/cases/{case.case_id}/decide", data={"action": "approve"})
    assert bare.status_code == 403
    # with the sign-in page's session and token, but not signed in
    token = csrf_of(anonymous.get("/login").text)
    unsigned = anonymous.post(
        f"/cases/{case.case_id}/decide", data={"csrf": token, "action": "approve"}
    )
    assert unsigned.status_code == 403
    assert [d for d in read_decisions(console.settings) if d.case_id == case.case_id] == []


def test_sign_in_sets_a_safe_cookie_and_refuses_a_wrong_password(console: ConsoleServer) -> None:
    with httpx.Client(base_url=console.url, timeout=10) as client:
        login = client.get("/login")
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "script-src" not in login.headers["content-security-policy"]  # none at all
        assert "default-src 'none'" in login.headers["content-security-policy"]
        token = csrf_of(login.text)
        wrong = client.post("/login", data={"csrf": token, "name": "alice", "password": "nope"})
        assert wrong.status_code == 401
        assert "Wrong user name or password" in wrong.text
        no_token = client.post("/login", data={"name": "alice", "password": PASSWORD})
        assert no_token.status_code == 403


def test_decisions_need_the_csrf_token_the_right_role_and_the_right_team(
    console: ConsoleServer,
) -> None:
    finance = make_case("policy", team="finance")
    integration = make_case("validation", team="integration")
    console.publish(finance, integration)
    before = len(read_decisions(console.settings))

    alice = signed_in(console, "alice")
    vic = signed_in(console, "vic")
    try:
        page = alice.get(f"/cases/{finance.case_id}")
        assert page.status_code == 200
        token = csrf_of(page.text)
        url = f"/cases/{finance.case_id}/decide"
        assert alice.post(url, data={"action": "approve"}).status_code == 403
        assert alice.post(url, data={"action": "approve", "csrf": "forged"}).status_code == 403
        other_team = alice.post(
            f"/cases/{integration.case_id}/decide", data={"action": "approve", "csrf": token}
        )
        assert other_team.status_code == 403
        assert "not in team integration" in other_team.text
        viewer = vic.post(url, data={"action": "approve", "csrf": csrf_of(vic.get("/queue").text)})
        assert viewer.status_code == 403
        assert "a viewer" in viewer.text
        # bad input: a clear 4xx, never a 5xx
        assert alice.post(url, data={"action": "explode", "csrf": token}).status_code == 400
        assert alice.post(url, data={"action": "reject", "csrf": token}).status_code == 409
        assert alice.post(url, data={"action": "link", "csrf": token}).status_code == 409
        huge = alice.post(url, data={"action": "reject", "csrf": token, "reason": "x" * 20000})
        assert huge.status_code == 413
        long = alice.post(url, data={"action": "reject", "csrf": token, "reason": "x" * 5000})
        assert long.status_code == 400
        assert (
            alice.post(url, content=b"\xff\xfe", headers={"content-type": "x"}).status_code == 400
        )
        assert alice.post("/cases/nope/decide", data={"csrf": token}).status_code == 404
        assert alice.get("/cases/nope").status_code == 404
        assert alice.get("/queue?severity=urgent").status_code == 400
        assert alice.get("/queue?age=forever").status_code == 400
        assert alice.get("/nowhere").status_code == 404
        assert read_decisions(console.settings)[before:] == []
    finally:
        alice.close()
        vic.close()


def test_the_api_takes_a_token_and_answers_json(console: ConsoleServer) -> None:
    case = make_case("account_match")
    console.publish(case)
    auth = {"authorization": f"Bearer {ALICE_TOKEN}"}
    with httpx.Client(base_url=console.url, timeout=10, headers=auth) as api:
        listed = api.get("/api/cases", params={"team": "sales-ops"})
        assert listed.status_code == 200
        assert case.case_id in {c["case_id"] for c in listed.json()}
        assert api.get(f"/api/cases/{case.case_id}").json()["kind"] == "account_match"
        assert api.get("/api/cases", params={"severity": "x"}).status_code == 400
        bad = api.post(f"/api/cases/{case.case_id}/decisions", content=b"not json")
        assert bad.status_code == 400
        linked = api.post(
            f"/api/cases/{case.case_id}/decisions", json={"action": "link", "target": "acct-acme-2"}
        )
        assert linked.status_code == 202, linked.text
        assert linked.json()["by"] == "alice"
        refused = api.post(
            f"/api/cases/{case.case_id}/decisions", json={"action": "link", "target": "acct-x"}
        )
        assert refused.status_code == 409
    sent = [d for d in read_decisions(console.settings) if d.case_id == case.case_id]
    assert [(d.action, d.target, d.by) for d in sent] == [("link", "acct-acme-2", "alice")]


def test_probes_tell_the_truth(console: ConsoleServer, anonymous: httpx.Client) -> None:
    """Alive at once; ready once the case store has read review.cases to its end (until then,
    on a loaded machine, 503 with the reason), and then for good."""
    assert anonymous.get("/healthz").status_code == 200
    ready = anonymous.get("/readyz")
    if ready.status_code != 200:  # the case store still reading review.cases
        assert ready.status_code == 503, ready.text
        assert ready.json()["status"] == "not_ready", ready.text
        assert ready.json()["reasons"], ready.text
    assert console.store.caught_up.wait(30), "the case store never read review.cases to its end"
    ready = anonymous.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready"}


def test_readyz_is_503_until_the_review_topics_exist(
    console: ConsoleServer, console_users: Users
) -> None:
    lost = console.settings.model_copy(
        update={"processors": ProcessorSettings(topic_prefix=f"missing{uuid.uuid4().hex[:8]}.")}
    )
    servers = serve(lost, console_users)
    server = next(servers)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/healthz").status_code == 200
            deadline = time.monotonic() + 20
            while True:
                ready = client.get("/readyz")
                assert ready.status_code == 503
                reasons = " ".join(ready.json()["reasons"])
                if "does not exist" in reasons or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert "review.cases does not exist yet" in reasons
            assert "review.decisions is not available" in reasons
    finally:
        servers.close()


def test_repeated_wrong_passwords_lock_that_name_for_a_while(console: ConsoleServer) -> None:
    with httpx.Client(base_url=console.url, timeout=10) as client:
        token = csrf_of(client.get("/login").text)
        for _ in range(5):
            wrong = client.post("/login", data={"csrf": token, "name": "sam", "password": "x"})
            assert wrong.status_code == 401
        right = client.post("/login", data={"csrf": token, "name": "sam", "password": PASSWORD})
        assert right.status_code == 429
        assert "Too many wrong passwords" in right.text
