"""Accounts: ownership merge, cross-reference, and linking a CRM account to an ERP customer.

Partitioning: canonical topics are keyed by canonical account id, so a CRM account and the ERP
customer it should be linked to may live in different partitions, even on different workers.
Linking therefore works in two ways:

1. Explicitly, when the ERP customer event carries the CRM id (or the connectors gave both the
   same canonical id): no search needed, the merge links them.
2. By search, in the ``identity`` table's match index (tax id, normalised name, web domain →
   canonical id). That index is written in the partition of the account it points to, so a
   worker finds only candidates of the partitions it holds: with one worker (or a single
   partition) every candidate is found; with several, a pair split across workers is not linked
   by search until one side changes while both are held by one worker. Not found is never
   linked wrongly: it stays unlinked, and its accepted quotes wait parked (``waiting_for``
   ``link``) until the join grace runs out, then go to a dead letter
   (QUOTE_ACCOUNT_NOT_LINKED) and, with the review desk on, a review case.

A link is never written across partitions directly: it is published as an ``AccountLinked``
event to each side (keyed by that side's id), so each partition updates only its own state.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from contracts.errors import Reason, ValidationError
from contracts.ids import deterministic_event_id
from contracts.models import Account, AccountEvent, Source
from interlock.records import RawRecord
from processors.domain.accounts import decide_link, match_keys, merge_account
from processors.flow import FlowContext
from processors.repositories import Accounts, Identity
from processors.review import ReviewDesk

__all__ = ["ERP_FIELDS", "LINK_EVENT", "MATCH_FIELDS", "Linker"]

LINK_EVENT = "AccountLinked"
#: Fields used as matching evidence, from either system.
MATCH_FIELDS = ("tax_id", "name", "legal_name", "web_domain")
#: ERP-owned account fields copied to the CRM side of a link.
ERP_FIELDS = (
    "erp_customer_number", "legal_name", "tax_id", "billing_address", "shipping_address",
    "currency",
    "payment_terms", "credit_limit", "credit_hold",
)  # fmt: skip


class Linker:
    """The account handling of the pipeline: merge, link, review.

    ``release_for_account`` is the quote flow's: quotes parked for an account go on once the
    account is known (or known again, after a duplicate).
    """

    def __init__(
        self,
        context: FlowContext,
        release_for_account: Callable[[str], None],
        review: ReviewDesk | None = None,
        *,
        accounts: Accounts,
        identity: Identity,
    ) -> None:
        self.p = context
        self.accounts = accounts
        self.identity = identity
        self._release_for_account = release_for_account
        self.review = review
        self._partition = 0
        """Partition of the account event being handled (where its case is kept)."""

    def on_account(self, event: AccountEvent, raw: RawRecord) -> None:
        p = self.p
        self._partition = raw.partition
        account_id = event.payload.account_id
        if p.is_seen(event.event_id):
            p.duplicate(event, raw, "account", "event_id")
            self._release_for_account(account_id)
            return
        result = merge_account(self.accounts.get(account_id), event, p.config.policy)
        p.violations(event, result.violations)
        if result.rejected:
            raise ValidationError(
                "; ".join(str(v) for v in result.violations), reason=Reason.OWNERSHIP_VIOLATION
            )
        state = result.state
        # Identity evidence is kept whoever owns the field: the CRM's copy of a tax id is not
        # authoritative for the account, but it is what lets us find the ERP customer.
        payload = event.payload
        evidence = {k: getattr(payload, k) for k in MATCH_FIELDS if getattr(payload, k)}
        if evidence:
            state["match"] = {**state.get("match", {}), **evidence}
        if event.event_type == LINK_EVENT and event.source.vendor == "interlock":
            state["linked_account_id"] = event.source.record_id
        self.accounts.put(account_id, state)
        p.mark_seen(event.event_id, raw.partition)
        p.audit(
            "merged",
            event,
            ids={"account_id": account_id},
            details={
                "applied": sorted(result.applied),
                "stripped": [v.field for v in result.violations],
            },
        )
        self._index(state)
        self._link(state, event)
        self._release_for_account(account_id)

    def _index(self, state: dict[str, Any]) -> None:
        self.identity.index(
            state["account_id"],
            crm_record_id=state.get("crm_record_id"),
            erp_customer_number=state.get("erp_customer_number"),
            side=_side(state),
            match_keys=match_keys(_matchable(state)),
        )

    def _link(self, state: dict[str, Any], event: AccountEvent) -> None:
        p = self.p
        linked_to = state.get("linked_account_id")
        if linked_to and event.source.system == "erp" and event.event_type != LINK_EVENT:
            self._send_link(state, linked_to, event, "erp")  # forward ERP changes to the CRM side
            return
        if linked_to or (state.get("crm_record_id") and state.get("erp_customer_number")):
            return
        view = _matchable(state)
        other = "crm" if _side(state) == "erp" else "erp"
        # the other side's accounts may live in other partitions (other canonical ids)
        ids = self.identity.accounts_matching(other, match_keys(view)) - {state["account_id"]}
        found = [c for c in (self.accounts.get(i, anywhere=True) for i in ids) if c is not None]
        candidates = [_matchable(c) for c in found]
        if not candidates:
            return
        decision = decide_link(view, candidates, p.config.match_threshold)
        if decision.action == "none" or decision.candidate_id is None:
            return
        details = {
            "candidate": decision.candidate_id,
            "confidence": decision.confidence,
            "basis": decision.basis,
            "threshold": p.config.match_threshold,
        }
        ids_ = {"account_id": state["account_id"], "candidate_id": decision.candidate_id}
        if decision.action == "review":
            if state.get("review_requested") == decision.candidate_id:
                return
            state["review_requested"] = decision.candidate_id
            self.accounts.put(state["account_id"], state)
            review = {"account_id": state["account_id"], **details, "scores": decision.scores}
            p.emit(p.topics.review, state["account_id"].encode(), json.dumps(review).encode())
            p.audit("review_requested", event, ids=ids_, details=details)
            if self.review is not None:
                self.review.open_for_match(
                    state,
                    found,
                    decision.scores,
                    decision.candidate_id,
                    decision.basis,
                    self._partition,
                )
            return
        candidate = next(c for c in found if c["account_id"] == decision.candidate_id)
        crm_side, erp_side = (
            (state, candidate) if not state.get("erp_customer_number") else (candidate, state)
        )
        self._send_link(erp_side, crm_side["account_id"], event, "erp")
        self._send_link(crm_side, erp_side["account_id"], event, "crm")
        p.audit("linked", event, ids=ids_, details=details)

    def link_decided(self, account_id: str, target: str, decision_id: str, at: float) -> bool:
        """Link ``account_id`` to ``target`` because a person said they are one company.

        Like a link by search, it is published as an ``AccountLinked`` event to each side (keyed
        by that side), with ids derived from the decision, so a replayed decision links once.
        False when either account is not held by this worker (nothing is sent).
        """
        p = self.p
        state = self.accounts.get(account_id, anywhere=True)
        other = self.accounts.get(target, anywhere=True)
        if state is None or other is None:
            return False
        when = datetime.fromtimestamp(at, UTC)
        cause = AccountEvent(
            event_id=decision_id,
            event_type="AccountMatchDecided",
            source=Source(system="crm", vendor="interlock", record_id=account_id, changed_at=when),
            correlation_id=account_id,
            causation_id=decision_id,
            occurred_at=when,
            origin=f"{p.config.origin}:review",
            payload=Account(account_id=account_id),
        )
        crm_side, erp_side = (
            (state, other) if not state.get("erp_customer_number") else (other, state)
        )
        self._send_link(erp_side, crm_side["account_id"], cause, "erp")
        self._send_link(crm_side, erp_side["account_id"], cause, "crm")
        p.audit(
            "linked",
            cause,
            ids={"account_id": account_id, "candidate_id": target},
            details={"by": "decision", "decision_id": decision_id},
        )
        return True

    def _send_link(
        self,
        source_state: dict[str, Any],
        target: str,
        cause: AccountEvent,
        system: Literal["crm", "erp"],
    ) -> None:
        """Publish what ``source_state``'s system owns to account ``target``, keyed by it."""
        if system == "erp":
            fields = {k: source_state.get(k) for k in ERP_FIELDS if source_state.get(k) is not None}
        else:
            fields = {"crm_record_id": source_state.get("crm_record_id")}
        payload = Account.model_validate({"account_id": target, **fields})
        link = AccountEvent(
            event_id=deterministic_event_id(LINK_EVENT, target, cause.event_id),
            event_type=LINK_EVENT,
            source=Source(
                system=system,
                vendor="interlock",
                record_id=source_state["account_id"],
                changed_at=cause.source.changed_at,
            ),
            correlation_id=cause.correlation_id,
            causation_id=cause.event_id,
            occurred_at=cause.occurred_at,
            origin=f"{self.p.config.origin}:link",
            changed_fields=sorted(fields),
            payload=payload,
        )
        self.p.send_event(self.p.topics.account, link, target)


def _matchable(state: dict[str, Any]) -> dict[str, Any]:
    """The account with its identity evidence from both systems, for matching only."""
    evidence = state.get("match") or {}
    return {**state, **{k: v for k, v in evidence.items() if not state.get(k)}}


def _side(state: dict[str, Any]) -> str:
    """Which system's side of a possible link an account is (ERP once it has a customer number)."""
    return "erp" if state.get("erp_customer_number") else "crm"
