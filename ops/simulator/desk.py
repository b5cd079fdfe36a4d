"""The simulated exception desk: people who decide the run's cases by a seeded policy.

While the scenario generates, this reads ``review.cases`` and decides every open case it sees,
as sales-ops and finance would: a policy or credit-hold case is mostly approved and sometimes
rejected, a quote that fails validation or waited past its grace is rejected with a reason, a
vague account match is mostly linked. What is decided depends only on the seed and the case
id, so a run with the same seed decides alike. Now and then a decision is sent twice (a double
click) and a case is first assigned to someone: the worker must act once all the same.

Deciding stops when the generation stops, so every decision has the drain to take effect; a
case opened later stays open, with its reason, and the invariants treat it so.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from contracts.errors import DecodeError
from contracts.review import Action, Case, decision_for, decode_case, encode_decision

__all__ = ["DeskDecision", "SimulatedDesk", "choose"]

log = logging.getLogger(__name__)

CASES_TOPIC = "review.cases"
DECISIONS_TOPIC = "review.decisions"
APPROVE_SHARE = 0.7
"""Share of policy and credit-hold cases approved (the rest are rejected)."""
LINK_SHARE = 0.6
"""Share of vague account matches linked (the rest: these are different companies)."""
DOUBLE_CLICK = 0.15
"""Share of decisions sent twice."""
ASSIGN_FIRST = 0.2
"""Share of cases assigned to someone before they are decided."""
OPERATORS = ("sam.salesops", "fin.finance", "ivy.integration")


@dataclass(frozen=True)
class DeskDecision:
    """What the simulated desk decided on a case (recorded with the run)."""

    case_id: str
    kind: str
    action: str
    by: str
    quote_id: str | None
    deal_id: str | None
    reason: str | None = None
    sent: int = 1
    """How often the decision was sent (2: a double click)."""
    assigned: bool = False
    """Whether the case was first assigned to the operator (one more decision)."""


def choose(seed: int, case: Case) -> tuple[Action, str | None]:
    """The seeded decision on ``case``: an action and, for a rejection, its reason."""
    rng = random.Random(f"{seed}:{case.case_id}")
    draw = rng.random()
    if case.kind == "account_match":
        return ("link", None) if draw < LINK_SHARE else ("distinct", None)
    if case.kind in ("policy", "credit_hold") and draw < APPROVE_SHARE:
        return "approve", None
    reasons = {
        "policy": "over the commercial policy; declined by finance",
        "credit_hold": "customer on credit hold; no order until paid",
        "validation": "the quote is incomplete; sales will re-issue it",
        "parked_timeout": "the account never arrived; re-create the deal",
    }
    return "reject", reasons.get(case.kind, "declined")


class SimulatedDesk:
    """A thread that decides the open cases of ``review.cases`` while the run generates."""

    def __init__(
        self,
        conf: Mapping[str, Any],
        producer: Producer,
        seed: int,
        record: Callable[[DeskDecision], None],
        clock: Callable[[], float] = time.time,
        *,
        cases_topic: str = CASES_TOPIC,
        decisions_topic: str = DECISIONS_TOPIC,
    ) -> None:
        self.conf = dict(conf)
        self.cases_topic = cases_topic
        self.decisions_topic = decisions_topic
        self.producer = producer
        self.seed = seed
        self.record = record
        self.clock = clock
        self.deciding = threading.Event()
        self._done = threading.Event()
        self._decided: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="simulated-desk", daemon=True)

    def start(self) -> None:
        self.deciding.set()
        self._thread.start()

    def stop_deciding(self) -> None:
        """The generation ended: decide nothing more (what is decided has the drain)."""
        self.deciding.clear()

    def close(self, timeout: float = 10.0) -> None:
        self.deciding.clear()
        self._done.set()
        self._thread.join(timeout)

    def decide(self, case: Case) -> DeskDecision | None:
        """Send the seeded decision on an open case once (twice on a double click)."""
        if not case.is_open or case.case_id in self._decided:
            return None
        self._decided.add(case.case_id)
        rng = random.Random(f"{self.seed}:{case.case_id}:clicks")
        by = OPERATORS[rng.randrange(len(OPERATORS))]
        now = self.clock()
        assigned = rng.random() < ASSIGN_FIRST
        if assigned:
            assign = decision_for(case, "assign", by, now, assignee=by)
            self._send(*encode_decision(assign))
        action, reason = choose(self.seed, case)
        decision = decision_for(case, action, by, now, reason=reason)
        sent = 2 if rng.random() < DOUBLE_CLICK else 1
        for _ in range(sent):
            self._send(*encode_decision(decision))
        made = DeskDecision(
            case.case_id, case.kind, action, by, case.quote_id, case.deal_id, reason, sent, assigned
        )
        self.record(made)
        return made

    def _send(self, key: bytes, value: bytes) -> None:
        self.producer.produce(self.decisions_topic, value, key)
        self.producer.poll(0)

    def _run(self) -> None:
        consumer = Consumer(
            {
                **self.conf,
                "group.id": f"interlock-simdesk-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        try:
            assigned = False
            while not self._done.is_set():
                if not assigned:
                    assigned = self._assign(consumer)
                    if not assigned:
                        self._done.wait(1.0)
                        continue
                for msg in consumer.consume(500, 0.5):
                    if msg.error() is not None or not msg.value():
                        continue
                    try:
                        case = decode_case(msg.value())
                    except DecodeError as exc:
                        log.warning("simulated desk: skipping a case record: %s", exc)
                        continue
                    if self.deciding.is_set():
                        self.decide(case)
        finally:
            self.producer.flush(30)
            consumer.close()

    def _assign(self, consumer: Consumer) -> bool:
        name = self.cases_topic
        meta = consumer.list_topics(name, timeout=5)
        topic = meta.topics.get(name)
        if topic is None or topic.error is not None or not topic.partitions:
            return False
        consumer.assign([TopicPartition(name, p, 0) for p in topic.partitions])
        return True
