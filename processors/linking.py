"""Accounts: ownership merge, cross-reference, and linking a CRM account to an ERP customer.

Partitioning: canonical topics are keyed by canonical account id, so a CRM account and the ERP
customer it should be linked to may live in different partitions, even on different workers.
Linking therefore works in two ways:

1. Explicitly, when the ERP customer event carries the CRM id (or the connectors gave both the
   same canonical id): no search needed, the merge links them.
2. By search, through the match index. Every account publishes a snapshot of itself to
   ``link.account-match`` once per match key (tax id, normalised name, web domain), keyed by
   that key, so every account found by one key meets in the key's partition, whichever worker
   holds it. There the index (``identity``: ``m|<key>``) keeps each account's side and
   snapshot. An account not linked yet also asks: each of its keys' partitions answers with
   the other side's accounts found by that key, keyed by the asking account, so the answers
   come back to the account's own partition. Once every key has answered, the account decides
   over all of them (``decide_link``) as a search of one table would, and publishes the link.
   A key's partition handles one snapshot at a time, so of two accounts that arrive together
   the later one finds the earlier. A key whose partition is the account's own is handled at
   once, in the account's event, not through the topic: with one partition (the default
   stack) nothing goes through the exchange. Not found is never linked wrongly: it stays
   unlinked, and its accepted quotes wait parked (``waiting_for`` ``link``) until the join
   grace runs out, then go to a dead letter (QUOTE_ACCOUNT_NOT_LINKED) and, with the review
   desk on, a review case.

A link is never written across partitions directly: it is published as an ``AccountLinked``
event to each side (keyed by that side's id), so each partition updates only its own state.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from contracts.errors import DecodeError, Reason, ValidationError
from contracts.ids import deterministic_event_id
from contracts.models import Account, AccountEvent, Source
from interlock.records import RawRecord
from processors.domain.accounts import decide_link, match_keys, merge_account
from processors.flow import FlowContext
from processors.repositories import Accounts, Identity
from processors.review import ReviewDesk

__all__ = ["ERP_FIELDS", "LINK_EVENT", "MATCH_FIELDS", "Linker", "match_record"]

LINK_EVENT = "AccountLinked"
#: Fields used as matching evidence, from either system.
MATCH_FIELDS = ("tax_id", "name", "legal_name", "web_domain")
#: ERP-owned account fields copied to the CRM side of a link.
ERP_FIELDS = (
    "erp_customer_number", "legal_name", "tax_id", "billing_address", "shipping_address",
    "currency",
    "payment_terms", "credit_limit", "credit_hold",
)  # fmt: skip
#: What an account's state keeps for itself alone, left out of the snapshot it publishes.
_PRIVATE = frozenset(
    (
        "match",
        "match_asked",
        "match_published",
        "match_candidates",
        "review_requested",
        "ordered",
        "updated_at",
    )
)


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
        self.identity.index(
            account_id,
            crm_record_id=state.get("crm_record_id"),
            erp_customer_number=state.get("erp_customer_number"),
        )
        self._link(state, event)
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
        self._release_for_account(account_id)

    def _link(self, state: dict[str, Any], event: AccountEvent) -> None:
        """Forward an ERP change to the linked CRM side; publish the account to its match keys,
        asking them for candidates while it is not linked (``state`` is updated, not written)."""
        linked_to = state.get("linked_account_id")
        if linked_to and event.source.system == "erp" and event.event_type != LINK_EVENT:
            self._send_link(state, linked_to, event, "erp")  # forward ERP changes to the CRM side
        unlinked = not linked_to and not (
            state.get("crm_record_id") and state.get("erp_customer_number")
        )
        self._publish(state, event, ask=unlinked)

    def _publish(self, state: dict[str, Any], event: AccountEvent, *, ask: bool) -> None:
        """Send the account's snapshot to each of its match keys' partitions (and a removal to
        the keys it no longer has); ``ask``: each key answers with the other side's accounts.

        A snapshot already published is not sent again unless the account asks."""
        view = _matchable(state)
        keys = match_keys(view)
        snapshot = {k: v for k, v in view.items() if k not in _PRIVATE}
        side = _side(state)
        digest = hashlib.blake2b(
            orjson.dumps([side, keys, snapshot], option=orjson.OPT_SORT_KEYS), digest_size=8
        ).hexdigest()
        before = state.get("match_published") or {}
        state.pop("match_asked", None)  # a question about an older version is moot
        if before.get("digest") == digest and not (ask and keys):
            return
        account_id = str(state["account_id"])
        for gone in before.get("keys", ()):
            if gone not in keys:
                self._to_index({"kind": "drop", "key": gone, "account_id": account_id})
        asked = event.event_id if ask and keys else None
        answers: dict[str, list[dict[str, Any]]] = {}
        for key in keys:
            found = self._to_index({
                "kind": "account", "key": key, "account_id": account_id, "side": side,
                "account": snapshot, "asked": asked,
            })  # fmt: skip
            if found is not None:
                answers[key] = found
        state["match_published"] = {"digest": digest, "keys": keys}
        if asked is not None:
            state["match_asked"] = {"keys": keys, "answers": answers, "cause": _cause_of(event)}
            self._conclude(state, account_id)

    def _to_index(self, record: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Hand a snapshot or removal to its key's index: at once when the key's partition is
        the account's own (this one), else through ``link.account-match``. The key's answer
        when it was handled here and asked, else None."""
        key = record["key"]
        if self.p.config.partition_of(key.encode()) == self._partition:
            return self._index(record)
        self._emit_match(key, record)
        return None

    def _emit_match(self, key: str, record: dict[str, Any]) -> None:
        self.p.emit(self.p.topics.account_match, key.encode(), orjson.dumps(record))

    # -- the match index: a key's partition, then the asking account's ----------------------
    def on_match(self, raw: RawRecord) -> None:
        """One record of ``link.account-match``: a snapshot or removal for a match key's index
        (in the key's partition), or a key's answer to an account (in the account's)."""
        record = match_record(raw.value)
        self._partition = raw.partition
        kind, account_id = record["kind"], record["account_id"]
        if kind == "candidates":
            self._answered(record)
            return
        found = self._index(record)
        if found is not None:
            self._emit_match(account_id, {
                "kind": "candidates", "key": record["key"], "account_id": account_id,
                "asked": record["asked"], "candidates": found,
            })  # fmt: skip

    def _index(self, record: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Keep or drop an account's entry in its key's index (in the key's partition); the
        other side's accounts the key finds when the account asks, else None."""
        key, account_id = record["key"], record["account_id"]
        if record["kind"] == "drop":
            self.identity.drop_match(key, account_id)
            return None
        side = record["side"]
        kept = self.identity.keep_match(
            key, account_id, {"side": side, "account": record["account"]}
        )
        if not record.get("asked"):
            return None
        # a key too common to keep this account identifies no one: it answers with nothing
        return [
            entry["account"]
            for other_id, entry in self.identity.matching(key).items()
            if kept and entry.get("side") != side and other_id != account_id
        ]

    def _answered(self, record: dict[str, Any]) -> None:
        """A key's candidates for an account that asked: decide once every key has answered."""
        account_id = record["account_id"]
        state = self.accounts.get(account_id)
        asked = (state or {}).get("match_asked")
        if (
            state is None
            or not asked
            or asked["cause"]["event_id"] != record["asked"]
            or record["key"] not in asked["keys"]
        ):
            return  # an answer to an older question: the account changed or decided since
        state = {**state, "match_asked": {**asked, "answers": {**asked["answers"]}}}
        state["match_asked"]["answers"][record["key"]] = record["candidates"]
        self._conclude(state, account_id)
        self.accounts.put(account_id, state)

    def _conclude(self, state: dict[str, Any], account_id: str) -> None:
        """Decide over the answers once every key asked has answered (``state`` is updated)."""
        asked = state["match_asked"]
        if len(asked["answers"]) < len(asked["keys"]):
            return
        done = state.pop("match_asked")
        found = {str(c["account_id"]): c for answer in done["answers"].values() for c in answer}
        self._decide(state, _cause_event(done["cause"], account_id), list(found.values()))

    def _decide(
        self, state: dict[str, Any], event: AccountEvent, found: list[dict[str, Any]]
    ) -> None:
        """Link ``state`` to the best of ``found`` (snapshots of the other side), or ask a
        person when the best is not sure enough (``state`` is updated, not written)."""
        p = self.p
        if state.get("linked_account_id") or (
            state.get("crm_record_id") and state.get("erp_customer_number")
        ):
            return
        if not found:
            return
        decision = decide_link(_matchable(state), found, p.config.match_threshold)
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
            # what a person's link will need of the candidates, which another worker may hold
            state["match_candidates"] = {str(c["account_id"]): c for c in found}
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

    def crm_side(self, account_id: str) -> str | None:
        """The account ``account_id`` (an ERP customer of this partition) is linked to, when it
        is another account: where the quotes answered by its ERP changes are kept."""
        state = self.accounts.get(account_id)
        linked = state.get("linked_account_id") if state else None
        return str(linked) if linked and linked != account_id else None

    def link_decided(self, account_id: str, target: str, decision_id: str, at: float) -> bool:
        """Link ``account_id`` to ``target`` because a person said they are one company.

        Like a link by search, it is published as an ``AccountLinked`` event to each side (keyed
        by that side), with ids derived from the decision, so a replayed decision links once.
        The candidate may be held by another worker: then its snapshot, kept when the case was
        opened, stands in for it. False when neither is known here (nothing is sent).
        """
        p = self.p
        state = self.accounts.get(account_id, anywhere=True)
        other = self.accounts.get(target, anywhere=True)
        if other is None and state is not None:
            other = (state.get("match_candidates") or {}).get(target)
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


def match_record(value: bytes | None) -> dict[str, Any]:
    """A ``link.account-match`` record, checked.

    Raises:
        DecodeError: not JSON, or not a snapshot, removal or answer with its fields.
    """
    try:
        record = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"account match record is not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise DecodeError("account match record is not a JSON object")
    kind = record.get("kind")
    needs: dict[str, type] = {"key": str, "account_id": str}
    if kind == "account":
        needs.update(side=str, account=dict)
    elif kind == "candidates":
        needs.update(asked=str, candidates=list)
    elif kind != "drop":
        raise DecodeError(f"account match record of unknown kind {kind!r}")
    wrong = [name for name, t in needs.items() if not isinstance(record.get(name), t)]
    if kind == "account" and record.get("side") not in ("crm", "erp"):
        wrong.append("side")
    if kind == "account" and not isinstance(record.get("asked"), str | None):
        wrong.append("asked")
    if kind == "candidates" and not all(
        isinstance(c, dict) and isinstance(c.get("account_id"), str) for c in record["candidates"]
    ):
        wrong.append("candidates")
    if wrong:
        raise DecodeError(f"account match record ({kind}) lacks or mistypes {sorted(set(wrong))}")
    return dict(record)


def _cause_of(event: AccountEvent) -> dict[str, Any]:
    """The event that asked, without its payload: what a link or a review case decided later,
    on the answers, names as its cause."""
    return event.model_dump(mode="json", exclude={"payload"})


def _cause_event(cause: dict[str, Any], account_id: str) -> AccountEvent:
    """The event that asked (``_cause_of``), with a payload that names only its account."""
    return AccountEvent.model_validate({**cause, "payload": {"account_id": account_id}})


def _matchable(state: dict[str, Any]) -> dict[str, Any]:
    """The account with its identity evidence from both systems, for matching only."""
    evidence = state.get("match") or {}
    return {**state, **{k: v for k, v in evidence.items() if not state.get(k)}}


def _side(state: dict[str, Any]) -> str:
    """Which system's side of a possible link an account is (ERP once it has a customer number)."""
    return "erp" if state.get("erp_customer_number") else "crm"
