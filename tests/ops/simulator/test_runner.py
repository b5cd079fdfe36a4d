"""A short real run: paced actions reach the receiver and the CDC topics; ground truth is saved."""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from interlock.settings import Settings
from ops.simulator.runner import SimulationConfig, Simulator
from ops.simulator.scenario import ChangeAction, CreditHoldAction, Scenario, WebhookAction
from ops.simulator.truth import load_run
from tests.conftest import end_offsets
from tests.ops.simulator.receiver import TABLES, Receiver

pytestmark = pytest.mark.integration


def test_a_paced_run_delivers_every_action_and_saves_the_truth(
    tmp_path: Path,
    make_topic: Callable[..., str],
    make_producer: Callable[..., Producer],
    settings: Settings,
) -> None:
    receiver = Receiver()
    prefix = f"sim{uuid.uuid4().hex[:8]}."
    for table in TABLES:
        make_topic(name=prefix + table)
    path = tmp_path / "truth.json"
    config = SimulationConfig(
        rate=400,
        duration_s=0.5,
        seed=8,
        webhooks_url=receiver.server.url,
        secret="s",
        ground_truth=path,
        cdc_prefix=prefix,
        drain_s=0.0,
        senders=3,
    )
    sim = Simulator(config, make_producer())
    sim.start()
    try:
        sim.run(threading.Event())
    finally:
        sim.close()
        receiver.server.stop()

    # the same seed, replayed without a clock, is exactly what was sent
    expected = list(itertools.islice(Scenario(8).actions(), sim.sent))
    webhooks = [a for a in expected if isinstance(a, WebhookAction)]
    # a credit hold is published by the fake ERP, as a customers change
    changes = [a for a in expected if isinstance(a, ChangeAction | CreditHoldAction)]
    assert sim.sent > 100
    assert len(receiver.requests) == len(webhooks)
    sent_ids = sorted(
        json.loads(body)[0]["eventId"]
        for _, _, body in receiver.requests
        if body.startswith(b"[{") and body.endswith(b"]")
    )
    assert sent_ids == sorted(a.events[0]["eventId"] for a in webhooks if a.fault is None)
    parts = [(prefix + t, 0) for t in TABLES]
    ends = end_offsets(settings.kafka.librdkafka(), parts)
    assert sum(ends.values()) == len(changes)

    truth, recorded = load_run(path)
    meta: dict[str, Any] = json.loads(path.read_text())["meta"]
    assert meta["phase"] == "done"
    assert meta["sent"] == sim.sent
    assert truth == sim.scenario.truth
    assert sum(recorded.responses.values()) == len(webhooks)
    assert set(recorded.rejected_responses) == {a.delivery_id for a in webhooks if a.fault}
