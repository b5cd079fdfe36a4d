"""Must-show: quotes dead-lettered as JOIN_TIMEOUT by the real processors worker are replayed
after their account arrives; each yields exactly one create-order command, and replaying the
same selection again yields none."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from contracts import OrderEvent
from interlock.settings import DlqSettings, Settings
from ops.dlq.cli import make_dlq_app
from tests.processors.conftest import ProcessorsEnv, proc_env  # noqa: F401  (fixture)
from tests.processors.events import account_event, quote_event

pytestmark = pytest.mark.integration


def test_join_timeout_quotes_replayed_by_the_cli_become_one_order_each(
    proc_env: ProcessorsEnv,  # noqa: F811
    settings: Settings,
    make_topic: Callable[..., str],
) -> None:
    t = proc_env.topics
    dlq_settings = settings.model_copy(
        update={
            "dlq": DlqSettings(
                audit_topic=make_topic(1, prefix="audit.replays"),
                purge_topic=make_topic(1, prefix="audit.dlq-purges"),
            )
        }
    )
    app = make_dlq_app(lambda: dlq_settings)

    def dlq(*args: str) -> str:
        result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        return result.stdout

    quotes = [quote_event(f"q-{i}", "acc-late") for i in range(3)]
    proc_env.send(t.quote, *quotes)
    worker = proc_env.start_worker(INTERLOCK_PROCESSORS__JOIN_GRACE_S="2")
    dead = proc_env.wait_for_raw(f"dlq.{t.quote}", lambda recs: len(recs) >= 3)
    assert [dict(r.headers)["interlock.dlq.reason"] for r in dead] == [b"JOIN_TIMEOUT"] * 3
    assert proc_env.events(t.create_order) == []

    proc_env.send(t.account, account_event("acc-late"))
    assert "replayed 3 record(s)" in dlq("replay", t.quote, "--reason", "JOIN_TIMEOUT", "--yes")
    orders = proc_env.wait_for(t.create_order, lambda ev: len(ev) >= 3)
    quote_ids = [o.payload.quote_id for o in orders if isinstance(o, OrderEvent)]
    assert sorted(quote_ids) == ["q-0", "q-1", "q-2"], worker.output()

    again = dlq("replay", t.quote, "--reason", "JOIN_TIMEOUT", "--yes")
    assert "0 dead letter(s)" in again
    assert "3 already replayed, skipped" in again
    forced = dlq("replay", t.quote, "--reason", "JOIN_TIMEOUT", "--yes", "--again")
    assert "replayed 3 record(s)" in forced
    assert worker.wait_metric("interlock_duplicates_suppressed_total", 3) >= 3, worker.output()
    assert len(proc_env.events(t.create_order)) == 3
