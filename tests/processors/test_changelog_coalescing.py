"""A table entry written several times between two commits leaves one changelog record, its
latest value, and the worker exports what that saved.

The coalescing itself is ``test_table_changelogs.py`` (in process); what only a worker on a
real broker shows is what reaches the changelog topic, which is what a restarted worker or a
new owner restores the table from.
"""

from __future__ import annotations

import json

import pytest

from interlock.records import RawRecord
from tests.processors.conftest import ProcessorsEnv
from tests.processors.events import account_event

pytestmark = pytest.mark.integration

WRITES = 10


def test_an_account_rewritten_between_two_commits_leaves_one_changelog_record(
    proc_env: ProcessorsEnv,
) -> None:
    t = proc_env.topics
    changes = [
        account_event("acc-c", version=v, erp_customer_number="C-acc-c", payment_terms=f"NET{v}")
        for v in range(1, WRITES + 1)
    ]
    proc_env.send(t.account, *changes)  # before the worker starts: all there at its first fetch
    # One batch holds every change, and a batch is handled without a turn of the event loop in
    # between, so no commit falls among the writes.
    worker = proc_env.start_worker(
        INTERLOCK_PROCESSORS__BATCH_SIZE=str(WRITES), INTERLOCK_PROCESSORS__BATCH_WAIT_S="10"
    )
    handled = worker.wait_metric("interlock_events_consumed_total", WRITES, topic=t.account)
    assert handled == WRITES, worker.output()
    changelog = f"{proc_env.app_id}-accounts-changelog"
    key = b'"acc-c"'

    def of_account(records: list[RawRecord]) -> list[RawRecord]:
        return [r for r in records if r.key == key]

    assert of_account(proc_env.wait_for_raw(changelog, of_account)), worker.output()
    # counted before the records are flushed, so already there once the record is
    assert worker.metric("interlock_changelog_writes_total", topic=changelog) == WRITES
    assert worker.metric("interlock_changelog_records_emitted_total", topic=changelog) == 1
    assert worker.stop() == 0, worker.output()  # a clean stop emits whatever is still kept

    (record,) = of_account(proc_env.read_records(changelog))
    assert record.value is not None
    assert json.loads(record.value)["payment_terms"] == f"NET{WRITES}"  # the latest write
