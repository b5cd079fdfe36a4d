"""Accepted quote → ERP order command: dedup, validation, parking until the account arrives.

A quote whose account is not known yet is parked with its original bytes; it is released when
the account arrives (or on the next scan), or dead-lettered as JOIN_TIMEOUT after the grace
period. A parked entry is removed only once its order command has been read back from its
topic (durable) or the quote was dead-lettered, so a crash can never lose a parked quote.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import orjson

from contracts.errors import InterlockError, Reason, ValidationError
from contracts.models import OrderEvent, QuoteEvent
from interlock.records import RawRecord
from processors.domain.housekeeping import overdue_parked
from processors.domain.quotes import (
    LINE_EVENT_TYPES,
    QuoteDecision,
    build_order_command,
    decide_quote,
    fold_lines,
    fold_order_state,
    not_linked,
    with_assembled_lines,
    with_erp_order_number,
)
from processors.flow import FlowContext
from processors.rawjson import raw_from_json, raw_to_json
from processors.repositories import Accounts, Correlation, Orders, ParkingLot, QuoteLines
from processors.review import OVERRIDE_HEADER, ReviewDesk

__all__ = ["PARKED_KIND", "QuoteFlow"]

PARKED_KIND = "quote_waiting_for_account"
WAITING_FOR = ("account", "link")
"""Why a quote is parked: its account is unknown, or known but not linked to an ERP customer."""


class JoinTimeoutError(InterlockError):
    """A quote waited longer than the grace period for its account."""

    reason = Reason.JOIN_TIMEOUT


class QuoteFlow:
    """The quote handling of the pipeline: park, release, order, amend, cancel."""

    def __init__(
        self,
        context: FlowContext,
        known_product: Callable[[str], bool] | None,
        review: ReviewDesk | None = None,
        *,
        accounts: Accounts,
        orders: Orders,
        lines: QuoteLines,
        parked: ParkingLot,
        correlation: Correlation,
    ) -> None:
        self.p = context
        self.accounts = accounts
        self.orders = orders
        self.lines = lines
        self.parked = parked
        self.correlation = correlation
        self.known_product = known_product
        self.review = review
        self._gauge = context.metrics.parked_joins.labels(PARKED_KIND)

    def order_state(self, quote_id: str, anywhere: bool = False) -> Mapping[str, Any] | None:
        """What was ordered for a quote: in-flight command first, else the durable state.

        ``anywhere``: read the durable state from any partition (an ERP change arrives in
        another partition than its quote); else from the current event's."""
        pending = self.p.inflight.orders.get(quote_id)
        if pending is not None:
            return pending
        return self.orders.get(quote_id, anywhere=anywhere)

    def on_quote(self, event: QuoteEvent, raw: RawRecord) -> None:
        p = self.p
        if p.is_seen(event.event_id):
            p.duplicate(event, raw, "quote", "event_id")
            return
        if event.event_type in LINE_EVENT_TYPES:
            self._on_line(event, raw)
            return
        event = self.assembled(event)
        quote = event.payload
        decision = decide_quote(
            event,
            self.order_state(quote.quote_id),
            self.accounts.get(quote.account_id),
            self.known_product,
            p.config.origin,
        )
        self._apply(decision, event, raw, released=False)

    def assembled(self, event: QuoteEvent) -> QuoteEvent:
        """The quote with its assembled lines when it came without any (see ``fold_lines``)."""
        if event.payload.lines:
            return event
        return with_assembled_lines(event, self.lines.get(event.payload.quote_id))

    def _on_line(self, event: QuoteEvent, raw: RawRecord) -> None:
        """Fold one line event into its quote's assembled lines; no order command by itself."""
        p = self.p
        quote = event.payload
        folded = fold_lines(self.lines.get(quote.quote_id), event)
        ids = {"quote_id": quote.quote_id, "revision": quote.revision}
        numbers = [line.line_number for line in quote.lines]
        if folded is None:
            p.audit("ignored", event, ids=ids, details={"lines": numbers, "action": "unchanged"})
        else:
            self.lines.put(quote.quote_id, folded)
            p.audit("merged", event, ids=ids, details={"lines": numbers})
        p.mark_seen(event.event_id, raw.partition)

    def _apply(
        self,
        decision: QuoteDecision,
        event: QuoteEvent,
        raw: RawRecord,
        *,
        released: bool,
        gate: bool = True,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        p = self.p
        quote = event.payload
        ids = {
            "quote_id": quote.quote_id,
            "revision": quote.revision,
            "account_id": quote.account_id,
        }
        action = decision.action
        review = self.review
        desk = review if review is not None and review.enabled else None
        if decision.command is not None and decision.kind is not None:
            # only a creation meets the policy gate: the account is read for it alone (else a
            # table read per command on the hot path)
            creating = desk is not None and decision.kind == "create-order"
            account = (self.accounts.get(quote.account_id) or {}) if creating else {}
            if desk is not None and creating and gate and desk.gate(event, account, raw):
                p.mark_seen(event.event_id, raw.partition)  # held: the decision re-drives it
                self.unpark(quote.quote_id, quote.account_id)
                return
            if released:
                p.audit("released", event, ids=ids, details={"action": action})
            self._send_or_hold(decision.kind, decision.command, event, ids, headers)
            if creating and account and not account.get("ordered"):
                # a customer's first order has its own limit: the next ones are not first
                self.accounts.put(quote.account_id, {**account, "ordered": True})
            p.inflight.orders[quote.quote_id] = {
                **fold_order_state(self.order_state(quote.quote_id), decision.command),
                "partition": raw.partition,
            }
        elif action in ("duplicate", "stale"):
            p.duplicate(event, raw, "quote", f"quote_id+revision ({action})")
            self.unpark(quote.quote_id, quote.account_id)
        elif action == "park":
            self._park(event, raw, ids, "link" if decision.issues else "account")
        elif action == "invalid":
            codes = [i.code for i in decision.issues]
            error = ValidationError(
                "; ".join(str(i) for i in decision.issues), reason=decision.issues[0].reason
            )
            p.dead_letter(raw, error, event)
            p.audit("rejected", event, ids=ids, details={"codes": codes})
            p.mark_seen(event.event_id, raw.partition)
            self.unpark(quote.quote_id, quote.account_id)
            if desk is not None:
                account = self.accounts.get(quote.account_id) or {}
                desk.open_for_invalid(event, raw, decision.issues, account)
        else:
            p.audit("ignored", event, ids=ids, details={"status": quote.status, "action": action})
            p.mark_seen(event.event_id, raw.partition)
            if quote.status in ("WITHDRAWN", "REJECTED", "EXPIRED"):
                self.unpark(quote.quote_id, quote.account_id)

    def _send_or_hold(
        self,
        kind: str,
        command: OrderEvent,
        event: QuoteEvent,
        ids: Mapping[str, Any],
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Send a command; hold an amend or cancel until the ERP order it addresses exists.

        A revision or withdrawal can arrive before the ERP answered the create-order: the
        compensation cannot name the ERP order yet, so it waits in the correlation table
        (durable, keyed by quote) and is released when the order's number is known.
        """
        p = self.p
        if kind == "create-order":
            p.send_command(kind, command, headers)
            return
        qid = command.payload.quote_id or ""
        number = command.payload.erp_order_number or self.correlation.number_of(qid)
        if number:
            p.send_command(kind, with_erp_order_number(command, number))
            return
        self.correlation.hold(qid, kind, command.model_dump(mode="json"))
        p.audit("held", event, ids=ids, details={"command": kind, "until": "erp_order_number"})

    def release_held(self, quote_id: str, number: str) -> None:
        """Send the compensation held for ``quote_id`` now that its ERP order number is known."""
        held = self.correlation.take_held(quote_id)
        if held is None:
            return
        kind, command = held
        self.p.send_command(kind, with_erp_order_number(OrderEvent.model_validate(command), number))

    def _park(
        self, event: QuoteEvent, raw: RawRecord, ids: Mapping[str, Any], waiting_for: str
    ) -> None:
        lot = self.parked
        quote = event.payload
        current = lot.get(quote.quote_id)
        if current is not None and int(current["revision"]) > quote.revision:
            return
        lot.put(
            {
                "quote_id": quote.quote_id,
                "revision": quote.revision,
                "account_id": quote.account_id,
                "partition": raw.partition,
                "parked_at": current["parked_at"] if current else self.p.clock(),
                "waiting_for": waiting_for,
                "raw": raw_to_json(raw),
            }
        )
        if current is None:
            self._gauge.inc()
        self.p.audit("parked", event, ids=ids, details={"waiting_for": waiting_for})
        if self.review is not None:
            self.review.note_parked(event, raw.partition)

    def _report_waiting(self, entries: list[Mapping[str, Any]], now: float) -> None:
        """Parked quotes by what they wait for, and the longest wait (the live view shows it)."""
        metrics = self.p.metrics
        metrics.join_grace.set(self.p.config.join_grace_s)
        oldest: dict[str, float] = dict.fromkeys(WAITING_FOR, 0.0)
        counts: dict[str, int] = dict.fromkeys(WAITING_FOR, 0)
        for entry in entries:
            reason = str(entry.get("waiting_for") or "account")
            counts[reason] = counts.get(reason, 0) + 1
            oldest[reason] = max(oldest.get(reason, 0.0), now - float(entry["parked_at"]))
        for reason, n in counts.items():
            metrics.parked_quotes.labels(reason).set(n)
            metrics.parked_oldest_age.labels(reason).set(oldest[reason])

    def unpark(self, quote_id: str, account_id: str) -> None:
        """Forget a parked quote (its command is durable, or it was dead-lettered)."""
        if self.parked.remove(quote_id, account_id):
            self._gauge.dec()

    def release_for_account(self, account_id: str) -> None:
        """Re-decide every quote parked for an account that just arrived or changed."""
        lot = self.parked
        for quote_id in lot.waiting_for_account(account_id):
            entry = lot.get(quote_id)
            if entry is not None:
                self._release(entry)

    def _release(self, entry: Mapping[str, Any]) -> None:
        p = self.p
        quote_id = str(entry["quote_id"])
        if quote_id in p.inflight.orders:
            return  # released already; the entry goes when its command is read back
        account = self.accounts.get(entry["account_id"])
        if account is None:
            return
        raw = raw_from_json(entry["raw"])
        assert raw.value is not None
        event = p.decode(raw.value)
        if not isinstance(event, QuoteEvent):
            return
        event = self.assembled(event)
        decision = decide_quote(
            event, self.order_state(quote_id), account, self.known_product, p.config.origin
        )
        if decision.action != "park":
            self._apply(decision, event, raw, released=True)

    def scan_parked(self, partition: int) -> None:
        """Release parked quotes of ``partition`` whose account is known; time out the rest."""
        p = self.p
        now = p.clock()
        lot = self.parked
        everything = lot.quotes()
        self._gauge.set(len(everything))
        self._report_waiting([v for _k, v in everything], now)
        entries = [(k, v) for k, v in everything if v.get("partition") == partition]
        for _quote_id, parked in entries:
            if self.accounts.get(parked["account_id"]) is not None:
                self._release(parked)
        waiting = [(k, v) for k, v in entries if lot.get(k) is not None]
        review = self.review
        for quote_id in overdue_parked(waiting, partition, now, p.config.join_grace_s):
            entry = lot.get(quote_id)
            if entry is None or entry["quote_id"] in p.inflight.orders:
                continue
            if review is not None and review.match_holds(str(entry["account_id"]), now):
                continue  # a person is deciding its account's match, or their link is on its way
            raw = raw_from_json(entry["raw"])
            waited = now - float(entry["parked_at"])
            error: InterlockError
            if self.accounts.get(entry["account_id"]) is not None:
                issue = not_linked(str(entry["account_id"]))
                error = ValidationError(f"{issue} after waiting {waited:.1f}s", reason=issue.reason)
            else:
                error = JoinTimeoutError(
                    f"quote {entry['quote_id']} waited {waited:.1f}s for account "
                    f"{entry['account_id']} (grace {p.config.join_grace_s:.1f}s)"
                )
            p.dead_letter(
                raw,
                error,
                None,
                durable=True,  # unpark forgets it: its dead letter first
                entity="quote",
                ids={"quote_id": entry["quote_id"], "account_id": entry["account_id"]},
                correlation_id=str(entry["quote_id"]),
            )
            self.unpark(str(entry["quote_id"]), str(entry["account_id"]))
            if review is not None and review.enabled:
                parked_event = p.decode(raw.value or b"")
                if isinstance(parked_event, QuoteEvent):
                    review.open_for_timeout(
                        parked_event, raw, error.reason.value, str(error), partition
                    )

    def decide_again(self, raw_json: Mapping[str, Any], override: Mapping[str, Any] | None) -> str:
        """Decide a quote held by a case again, as a person's decision asks; the action taken.

        With ``override`` (an approval of a policy or credit-hold case) the policy gate is not
        asked again, a credit hold does not stop the order, and the order command carries the
        override (header and status reason). Without it (a retry) the quote goes through every
        check as if it had just arrived. Ids stay derived from the quote: acting twice is once.
        """
        p = self.p
        raw = raw_from_json(raw_json)
        event = p.decode(raw.value or b"")
        if not isinstance(event, QuoteEvent):
            return "not a quote"
        event = self.assembled(event)
        quote = event.payload
        account = self.accounts.get(quote.account_id)
        state = self.order_state(quote.quote_id)
        pending = p.inflight.orders.get(quote.quote_id)
        if pending is not None and int(pending["revision"]) >= quote.revision:
            # this revision's command is on its way; a newer revision approved while an
            # older one's create is in flight goes on and amends it
            return "already requested"
        decision = decide_quote(event, state, account, self.known_product, p.config.origin)
        headers = None
        if override is not None:
            if (
                decision.action == "invalid"
                and account is not None
                and all(i.code == "QUOTE_ACCOUNT_CREDIT_HOLD" for i in decision.issues)
            ):
                command = build_order_command("create-order", event, account, p.config.origin)
                decision = QuoteDecision("create", command, "create-order")
            if decision.command is not None:
                reason = f"override approved by {override['by']} (case {override['case_id']})"
                payload = decision.command.payload.model_copy(update={"status_reason": reason})
                command = decision.command.model_copy(update={"payload": payload})
                decision = replace(decision, command=command)
                headers = [(OVERRIDE_HEADER, orjson.dumps(dict(override)))]
        self._apply(decision, event, raw, released=True, gate=override is None, headers=headers)
        return decision.action
