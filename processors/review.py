"""The exception desk in the worker: open cases, hold what waits for a person, apply decisions.

Cases are opened where the flows meet a situation that needs judgment: a doubtful account
match (:mod:`processors.linking`), an accepted quote over the commercial policy, failing
validation or on credit hold, a quote parked past its grace (:mod:`processors.quoteflow`).
Each case lives in the ``cases`` table (in the partition of its account, with the quote's
original bytes when it is about a quote) and, one record per state change, on the compacted
``review.cases`` topic that the CLI and the console read.

Decisions arrive on ``review.decisions`` keyed by the case's account, so they are handled in
the partition that holds the case. A decision id is remembered in ``seen`` like an event id:
a double click, a retry or a replay of the topic acts once. Each applied (or refused) decision
is written to ``audit.decisions`` with who, when, what, why and its outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from contracts.errors import DecodeError, Reason
from contracts.models import QuoteEvent
from contracts.policy import CommercialPolicy
from contracts.review import (
    AccountsContext,
    Case,
    CaseContext,
    CaseKind,
    Decision,
    MatchCandidate,
    MatchContext,
    case_id_for,
    decode_decision,
    encode_audit,
    encode_case,
)
from interlock.records import RawRecord
from processors.domain.casecontext import (
    accounts_context,
    match_evidence,
    quote_context,
    with_quote,
)
from processors.domain.cases import (
    Applied,
    apply_decision,
    escalate,
    open_case,
    refresh_case,
    rejection_update,
)
from processors.domain.quotes import Issue
from processors.flow import FlowContext
from processors.rawjson import raw_to_json
from processors.repositories import Accounts, Cases, ParkingLot

__all__ = ["OVERRIDE_HEADER", "Redo", "ReviewDesk"]

OVERRIDE_HEADER = "interlock.override"
"""Header of an order command created by a person's approval: the case, decision, who and what
limits or holds were overridden (JSON)."""

_CREDIT_HOLD = "QUOTE_ACCOUNT_CREDIT_HOLD"


class Redo(Protocol):
    """The quote flow's: decide a held quote again (with an override, or as it is now)."""

    def __call__(self, raw_json: Mapping[str, Any], override: Mapping[str, Any] | None) -> str: ...


Link = Callable[[str, str, str, float], bool]
"""The linker's: link account ``a`` to account ``b`` by decision ``id`` at ``t``."""


class ReviewDesk:
    """Cases of the partitions this worker holds, and the decisions taken on them."""

    def __init__(
        self,
        context: FlowContext,
        policy: CommercialPolicy | None,
        *,
        cases: Cases | None,
        accounts: Accounts,
        parked: ParkingLot,
    ) -> None:
        self.p = context
        self.policy = policy
        self.cases = cases
        self.accounts = accounts
        self.parked = parked
        self.redo: Redo | None = None
        self.link: Link | None = None
        self._open: dict[int, dict[str, Case]] = {}
        """Per partition, its open cases (filled at its first tick, then kept up to date)."""
        self._labels: set[tuple[str, str]] = set()
        self._teams: set[str] = set()

    @property
    def enabled(self) -> bool:
        """Cases need their table and the policy (routing, SLAs); without them nothing opens."""
        return self.cases is not None and self.policy is not None

    # -- cases --------------------------------------------------------------------------------
    def case(self, case_id: str) -> Case | None:
        """A case of any partition this worker holds (a match case may be in the other side's)."""
        cases = self.cases if self.enabled else None
        return cases.get(case_id) if cases is not None else None

    def _write(self, case: Case, partition: int, quote: Mapping[str, Any] | None = None) -> None:
        assert self.cases is not None
        self.cases.put(case, partition, quote)
        key, value = encode_case(case)
        self.p.emit(self.p.topics.cases, key, value)
        held = self._open.get(partition)
        if held is not None:
            if case.is_open:
                held[case.case_id] = case
            else:
                held.pop(case.case_id, None)

    def _open_case(
        self,
        fresh: Case,
        partition: int,
        quote: Mapping[str, Any] | None = None,
        event: QuoteEvent | None = None,
    ) -> Case:
        """Write ``fresh`` (or refresh the open case it matches); the case as it now stands."""
        existing = self.case(fresh.case_id)
        case = refresh_case(existing, fresh)
        if case is None:
            assert existing is not None
            return existing
        self._write(case, partition, quote)
        if existing is None:
            self.p.metrics.review_cases_opened.labels(case.kind, case.team).inc()
            self.p.audit(
                "case_opened",
                event,
                entity="case",
                ids={
                    "case_id": case.case_id,
                    "quote_id": case.quote_id,
                    "account_id": case.account_id,
                },
                details={
                    "kind": case.kind,
                    "team": case.team,
                    "severity": case.severity,
                    "reason": case.reason,
                    "summary": case.summary,
                },
                correlation_id=case.correlation_id,
            )
        return case

    def open_for_match(
        self,
        state: Mapping[str, Any],
        candidates: Iterable[Mapping[str, Any]],
        scores: Mapping[str, float],
        best: str,
        basis: str,
        partition: int,
    ) -> Case | None:
        """A match below the threshold: both accounts side by side, the scores and evidence."""
        if not self.enabled:
            return None
        assert self.policy is not None
        account_id = str(state["account_id"])
        found = {str(c["account_id"]): c for c in candidates}
        listed = [
            MatchCandidate(
                account_id=cid,
                name=_text(found[cid].get("legal_name") or found[cid].get("name")),
                domain=_text(found[cid].get("web_domain")),
                score=score,
                evidence=match_evidence(state, found[cid], basis if cid == best else None),
            )
            for cid, score in sorted(scores.items(), key=lambda kv: -kv[1])
            if cid in found
        ]
        other = found.get(best, {})
        crm, erp = (state, other) if not state.get("erp_customer_number") else (other, state)
        # The case is about the CRM side (whose quotes wait for the link), kept with the account
        # whose event found the match: decisions are keyed by it.
        crm_id = str(crm.get("account_id") or account_id)
        context = CaseContext(
            match=MatchContext(
                score=scores.get(best, 0.0),
                threshold=self.p.config.match_threshold,
                candidates=listed,
            ),
            accounts=self._accounts(crm, erp),
            details={"basis": basis, "account": account_id, "best": best},
        )
        name = crm.get("name") or crm.get("legal_name") or crm_id
        fresh = open_case(
            self.policy,
            kind="account_match",
            subject=crm_id,
            reason=Reason.MATCH_BELOW_THRESHOLD.value,
            now=self.p.clock(),
            partition_key=account_id,
            summary=f"is {name} the same company as {erp.get('legal_name') or erp.get('name')}?"
            f" (score {scores.get(best, 0.0):.2f})",
            context=context,
            account_id=crm_id,
        )
        return self._open_case(self._with_parked_quote(fresh), partition)

    def match_holds(self, account_id: str, now: float) -> bool:
        """Whether this account's parked quotes wait for a person: they are deciding its match,
        or they linked it less than a join grace ago (the link is on its way to the account, and
        a quote timed out before it lands would be dead-lettered as not linked)."""
        case = self.case(_match_id(account_id)) if self.enabled else None
        if case is None:
            return False
        grace_s = self.p.config.join_grace_s
        return case.is_open or (case.status == "linked" and now - case.updated_at < grace_s)

    def note_parked(self, event: QuoteEvent, partition: int) -> None:
        """A quote parked for an account whose match is in review: the case shows the quote."""
        if not self.enabled:
            return
        case = self.case(_match_id(event.payload.account_id))
        if case is None or not case.is_open or case.quote_id == event.payload.quote_id:
            return
        if case.partition_key != event.payload.account_id:
            return  # kept in the other side's partition: the decision finds the quote then
        fresh = with_quote(case, event).model_copy(update={"updated_at": self.p.clock()})
        refreshed = refresh_case(case, fresh)
        if refreshed is not None:
            self._write(refreshed, partition)

    def gate(self, event: QuoteEvent, account: Mapping[str, Any], raw: RawRecord) -> bool:
        """The commercial policy before an order is created: True holds the quote for a person.

        A quote revision over a limit opens a ``policy`` case and waits; once approved its
        order is created by the decision (with the override), never by a redelivery; once
        rejected it is never created.
        """
        if not self.enabled:
            return False
        assert self.policy is not None
        quote = event.payload
        case = self.case(_quote_case_id("policy", event))
        if case is not None and case.status == "approved":
            return False  # the approval re-drives it; a redelivery finds the order requested
        if case is None or case.is_open:
            breaches = self.policy.breaches(quote, first_order=not account.get("ordered"))
            if not breaches:
                return False
            self._open_quote_case("policy", event, raw, Reason.POLICY_LIMIT_EXCEEDED.value, (), {
                "breaches": [b.as_json() for b in breaches],
                "summary": "; ".join(str(b) for b in breaches),
            }, account)  # fmt: skip
            self.p.audit(
                "held_for_approval",
                event,
                ids={"quote_id": quote.quote_id, "revision": quote.revision},
                details={"limits": [b.limit for b in breaches]},
            )
        else:
            self.p.audit(
                "ignored",
                event,
                ids={"quote_id": quote.quote_id, "revision": quote.revision},
                details={"why": f"the quote's policy case was {case.status}"},
            )
        return True

    def open_for_invalid(
        self, event: QuoteEvent, raw: RawRecord, issues: list[Issue], account: Mapping[str, Any]
    ) -> None:
        """A quote that cannot be ordered: credit hold (finance) or validation (by reason)."""
        if not self.enabled or not issues:
            return
        codes = [i.code for i in issues]
        kind: CaseKind = "credit_hold" if _CREDIT_HOLD in codes else "validation"
        details = {
            "codes": codes,
            "problems": [str(i) for i in issues],
            "summary": "; ".join(str(i) for i in issues),
        }
        self._open_quote_case(
            kind, event, raw, issues[0].reason.value, tuple(codes), details, account
        )

    def open_for_timeout(
        self, event: QuoteEvent, raw: RawRecord, reason: str, message: str, partition: int
    ) -> None:
        """A quote dead-lettered after waiting past its grace: integration looks at why."""
        if not self.enabled:
            return
        account = self.accounts.get(event.payload.account_id) or {}
        details = {"summary": message, "waiting_for": "account" if not account else "link"}
        self._open_quote_case(
            "parked_timeout", event, raw, reason, (), details, account, partition=partition
        )

    def _open_quote_case(
        self,
        kind: CaseKind,
        event: QuoteEvent,
        raw: RawRecord,
        reason: str,
        route_by: tuple[str, ...],
        details: dict[str, Any],
        account: Mapping[str, Any],
        *,
        partition: int | None = None,
    ) -> Case:
        assert self.policy is not None
        quote = event.payload
        linked = account.get("linked_account_id")
        erp_side = self.accounts.get(linked, anywhere=True) if linked else None
        fresh = open_case(
            self.policy,
            kind=kind,
            subject=f"{quote.quote_id}|{quote.revision}",
            reason=reason,
            now=self.p.clock(),
            partition_key=quote.account_id,
            summary=f"quote {quote.name or quote.quote_id} rev {quote.revision}: "
            f"{details.get('summary', reason)}",
            context=CaseContext(
                quote=quote_context(event),
                accounts=self._accounts(account, erp_side or account) if account else None,
                details=details,
            ),
            total=quote.total,
            currency=quote.currency,
            route_by=route_by,
            quote_id=quote.quote_id,
            account_id=quote.account_id,
            deal_id=quote.crm_deal_id,
            correlation_id=event.correlation_id or quote.quote_id,
        )
        where = raw.partition if partition is None else partition
        return self._open_case(fresh, where, raw_to_json(raw), event)

    # -- decisions ----------------------------------------------------------------------------
    def on_decision(self, raw: RawRecord) -> None:
        """Apply one record of ``review.decisions`` once; never raises for a bad record."""
        p = self.p
        try:
            decision = decode_decision(raw.value)
        except DecodeError as exc:
            p.dead_letter(raw, exc, None)
            return
        counter = p.metrics.review_decisions
        if p.is_seen(decision.decision_id):
            counter.labels(decision.action, "duplicate").inc()
            p.count(raw.topic, "duplicate")
            return
        case = self.case(decision.case_id)
        if case is not None and case.kind == "account_match" and case.quote_id is None:
            case = self._with_parked_quote(case)
        if case is None:
            self._audit(decision, "refused: unknown case (not in this partition)", None)
            counter.labels(decision.action, "unknown_case").inc()
        else:
            applied = apply_decision(case, decision, p.clock())
            outcome = self._carry_out(applied, decision)
            if applied.case is not case:
                self._write(applied.case, raw.partition)
            self._audit(decision, outcome, applied.case)
            refused = outcome.startswith("refused")
            counter.labels(decision.action, "refused" if refused else "applied").inc()
        p.mark_seen(decision.decision_id, raw.partition)
        p.count(raw.topic, "ok")

    def _audit(self, decision: Decision, outcome: str, case: Case | None) -> None:
        key, value = encode_audit(decision, outcome, case)
        self.p.emit(self.p.topics.audit, key, value)

    def _carry_out(self, applied: Applied, decision: Decision) -> str:
        """Do what the decision means; the outcome as the audit trail tells it."""
        case = applied.case
        effect = applied.effect
        if effect == "link" and self.link is not None and applied.target:
            if not self.link(case.partition_key, applied.target, decision.decision_id, decision.at):
                return f"{applied.outcome} (the account or the candidate is not known here)"
        elif effect in ("create_override", "retry") and self.redo is not None:
            assert self.cases is not None
            quote = self.cases.held_quote(case.case_id)
            if quote is None:
                return f"{applied.outcome} (no quote held by the case)"
            override = None
            if effect == "create_override":
                override = {
                    "case_id": case.case_id,
                    "decision_id": decision.decision_id,
                    "by": decision.by,
                    "at": decision.at,
                    "kind": case.kind,
                    "overrides": case.context.details.get("breaches")
                    or case.context.details.get("codes")
                    or [],
                }
            action = self.redo(quote, override)
            return f"{applied.outcome}: {action}"
        elif effect == "reject_writeback":
            return self._write_back_rejection(case, decision, applied.outcome)
        return applied.outcome

    def _write_back_rejection(self, case: Case, decision: Decision, outcome: str) -> str:
        """Tell the CRM deal why no order will come: an update-deal with status REJECTED."""
        command = rejection_update(case, decision, self.p.config.origin)
        if command is None:
            return f"{outcome} (no deal to write to)"
        self.p.send_command("update-deal", command)
        return outcome

    # -- time ---------------------------------------------------------------------------------
    def on_tick(self, partition: int) -> None:
        """Escalate ``partition``'s cases past their SLA; report what waits, by team."""
        if not self.enabled:
            return
        assert self.policy is not None
        assert self.cases is not None
        held = self._open.get(partition)
        if held is None:
            held = self._open[partition] = self.cases.open_in(partition)
        now = self.p.clock()
        for case in list(held.values()):
            up = escalate(case, now, self.policy)
            if up is None:
                continue
            self.p.metrics.review_sla_breaches.labels(case.team, case.kind).inc()
            self._write(up, partition)
            self.p.audit(
                "case_escalated",
                None,
                entity="case",
                ids={"case_id": up.case_id, "quote_id": up.quote_id},
                details={"severity": up.severity, "team": up.team, "sla_due": up.sla_due},
                correlation_id=up.correlation_id,
            )
        self._report(now)

    def _report(self, now: float) -> None:
        counts: dict[tuple[str, str], int] = {}
        oldest: dict[str, float] = {}
        for held in self._open.values():
            for case in held.values():
                label: tuple[str, str] = (case.team, case.severity)
                counts[label] = counts.get(label, 0) + 1
                oldest[case.team] = max(oldest.get(case.team, 0.0), now - case.opened_at)
        metrics = self.p.metrics
        for label in self._labels | counts.keys():
            metrics.review_cases_open.labels(*label).set(counts.get(label, 0))
        for team in self._teams | oldest.keys():
            metrics.review_oldest_case_age.labels(team).set(oldest.get(team, 0.0))
        self._labels |= counts.keys()
        self._teams |= oldest.keys()

    def forget_partitions(self) -> None:
        """After a rebalance: the open-case index is rebuilt per partition at its next tick."""
        self._open.clear()

    # -- context ------------------------------------------------------------------------------
    def _accounts(self, crm: Mapping[str, Any], erp: Mapping[str, Any]) -> AccountsContext:
        return accounts_context(crm, erp, self.p.config.policy)

    def _with_parked_quote(self, case: Case) -> Case:
        """An account-match case with the quote waiting for it (for the audit and the trace)."""
        event = self._parked_quote(case.account_id or "")
        return case if event is None else with_quote(case, event)

    def _parked_quote(self, account_id: str) -> QuoteEvent | None:
        for record in self.parked.records_for_account(account_id):
            event = self.p.decode(record.value or b"")
            if isinstance(event, QuoteEvent):
                return event
        return None


def _match_id(account_id: str) -> str:
    return case_id_for("account_match", account_id)


def _quote_case_id(kind: CaseKind, event: QuoteEvent) -> str:
    return case_id_for(kind, f"{event.payload.quote_id}|{event.payload.revision}")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
