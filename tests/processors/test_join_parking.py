"""A parked quote's table writes land in the changelog partition of the quote that caused them.

Parking, release and JOIN_TIMEOUT themselves are ``test_parking_flow.py`` (in process); what only
a worker shows is where Faust writes the parked entries: co-partitioned state survives a
rebalance only if each write goes to its event's partition, also when events come in batches.
"""

from __future__ import annotations

import pytest

from contracts import encode
from tests.processors.conftest import ProcessorsEnv
from tests.processors.events import quote_event

pytestmark = pytest.mark.integration


def test_parked_quotes_are_written_to_the_changelog_partition_of_their_event(
    proc_env: ProcessorsEnv,
) -> None:
    t = proc_env.topics
    quotes = [quote_event(f"q-{n}", f"acc-never-{n}") for n in range(6)]
    proc_env.send(t.quote, *quotes)  # one batch, keyed by account: spread over the partitions
    worker = proc_env.start_worker()
    assert worker.wait_metric("interlock_parked_joins", len(quotes)) == len(quotes), worker.output()
    quote_partition = {r.value: r.partition for r in proc_env.read_records(t.quote)}
    assert len(set(quote_partition.values())) > 1  # the batch spans partitions
    keys = {f'"q:{quote.payload.quote_id}"'.encode() for quote in quotes}
    # a table's changelog records leave at the next commit (processors.output.TableChangelogs)
    changelog = proc_env.wait_for_raw(
        f"{proc_env.app_id}-parked-changelog", lambda recs: keys <= {r.key for r in recs}
    )
    for quote in quotes:
        key = f'"q:{quote.payload.quote_id}"'.encode()
        partitions = {r.partition for r in changelog if r.key == key}
        assert partitions == {quote_partition[encode(quote)]}, quote.payload.quote_id
