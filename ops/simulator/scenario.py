"""The scenario: a mid-market company's CRM and ERP activity, generated from a seed, pure.

``Scenario(seed, mix).actions()`` yields an endless, deterministic stream of actions (a webhook
delivery to the receiver, an ERP row change, a credit hold decision) and records the ground
truth as it goes: which accepted quote revisions must each become exactly one ERP order, which
injected bad inputs must end where and why. Nothing here reads a clock: the driver stamps
times when it sends, so what is generated depends only on the seed.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from typing import Any, Literal

from ops.simulator.actions import (
    Action,
    ChangeAction,
    CreditHoldAction,
    DriftAction,
    Fault,
    FaultMix,
    WebhookAction,
)
from ops.simulator.conventions import crm_quote_id
from ops.simulator.drift import DriftMix, DriftSchedule
from ops.simulator.records import (
    FIRST,
    LAST,
    SUFFIX,
    WORDS,
    CompanyRecord,
    customer_row,
    product_row,
)
from ops.simulator.truth import DriftCase, GroundTruth

__all__ = [
    "Action",
    "ChangeAction",
    "CreditHoldAction",
    "DriftAction",
    "FaultMix",
    "Scenario",
    "WebhookAction",
]


class Scenario:
    """The deterministic action stream and its ground truth."""

    def __init__(
        self,
        seed: int,
        mix: FaultMix | None = None,
        vendor: str = "hubspot",
        drift: DriftMix | None = None,
    ) -> None:
        self.seed = seed
        self.mix = mix or FaultMix()
        self.vendor = vendor  # names the canonical quote ids of the ground truth
        self.rng = random.Random(seed)
        self.truth = GroundTruth(seed=seed)
        self._ids = 1000
        self._lsn = 0
        self._accounts: list[CompanyRecord] = []
        self._dormant: list[CompanyRecord] = []
        self._products: list[tuple[str, int]] = []
        self._sent: deque[WebhookAction] = deque(maxlen=500)
        self._changes: deque[ChangeAction] = deque(maxlen=200)
        self._later: deque[WebhookAction] = deque()
        self.episode_open = False
        # drift has a random stream of its own: the story is the same with or without it
        self._drift = DriftSchedule(seed, drift) if drift is not None else None
        self._eligible = 0

    def _next_id(self) -> str:
        self._ids += 1
        return str(self._ids)

    def next_lsn(self) -> int:
        """The next position in the ERP's change log (shared with the fake ERP's own changes)."""
        self._lsn += 1
        return self._lsn

    # the stream -------------------------------------------------------------------------------
    def actions(self) -> Iterator[Action]:
        """Every action, forever: a bootstrap of accounts and products, then business as usual.

        ``episode_open`` is True while the actions of one business episode (an account with its
        customer row, a quote with its lines and acceptance) are being yielded: a run stops only
        between episodes, so the ground truth never names a half-sent story.
        """
        self.episode_open = True
        for _ in range(max(1, self.mix.bootstrap_products)):
            yield from self._product()
        for _ in range(max(1, self.mix.bootstrap_accounts)):
            yield from self._account_episode()
        for _ in range(max(1, self.mix.dormant_accounts)):
            acct = self._new_account(dormant=True)
            yield from self._account_actions(acct)
        while True:
            self.episode_open = False
            episode = list(self._episode())
            self.episode_open = True
            for i, action in enumerate(episode):
                self.episode_open = i < len(episode) - 1
                yield action

    def first_handoff(self) -> tuple[list[Action], list[Action]]:
        """The example a user sends by hand (``interlock send``), with no fault in it.

        Returns the customer part (a product, the ERP customer row and the CRM company with its
        contacts, which the worker links) and the quote part (a deal, its lines and its
        acceptance). The same seed gives the same ids, so sending it again shows the dedup.
        """
        self.mix = FaultMix(
            duplicate=0, redelivery=0, out_of_order=0, bad_json=0, bad_signature=0,
            invalid_quote=0, withdrawal=0, revision=0, cdc_redelivery=0, ownership_breach=0,
            credit_hold=0,
        )  # fmt: skip
        customer: list[Action] = [*self._product(), *self._product()]
        customer += self._account_actions(self._new_account())
        return customer, list(self._quote_episode())

    def _episode(self) -> Iterator[Action]:
        m, r = self.mix, self.rng.random()
        if self._later and self.rng.random() < 0.5:
            self.truth.redeliveries += 1
            yield self._later.popleft()
        if r < 0.10:
            yield from self._account_episode()
        elif r < 0.16:
            yield from self._contact_update()
        elif r < 0.20:
            yield from self._product_update()
        elif r < 0.20 + m.ownership_breach:
            yield from self._ownership_breach()
        elif r < 0.20 + m.ownership_breach + m.credit_hold:
            # only dormant accounts (never quoted) are held: a hold makes their quotes invalid,
            # and whether a quote is processed before or after the hold is a race
            acct = self.rng.choice(self._dormant)
            acct.on_hold = not acct.on_hold
            row = self.customer_row(acct, credit_hold=acct.on_hold)
            yield CreditHoldAction(acct.customer_number, acct.on_hold, row)
        else:
            yield from self._quote_episode()
        yield from self._faults()

    def _faults(self) -> Iterator[Action]:
        m, rng = self.mix, self.rng
        if self._sent and rng.random() < m.duplicate:
            original = self._sent[-1]
            self.truth.duplicates += 1
            yield WebhookAction(original.delivery_id, original.events, None, "duplicate")
        if self._sent and rng.random() < m.redelivery:
            original = rng.choice(list(self._sent))
            self._later.append(
                WebhookAction(original.delivery_id, original.events, None, "redelivery")
            )
        faults: tuple[tuple[Fault, float], ...] = (
            ("bad_json", m.bad_json),
            ("bad_signature", m.bad_signature),
        )
        for fault, p in faults:
            if rng.random() < p:
                action = self._company_webhook(
                    rng.choice(self._accounts), "propertyChange", fault=fault
                )
                self.truth.add_rejected(action.delivery_id, fault)
                yield action
        if self._changes and rng.random() < m.cdc_redelivery:
            c = rng.choice(list(self._changes))
            self.truth.cdc_redeliveries += 1
            yield ChangeAction(c.table, c.op, c.key, c.before, c.after, c.lsn, repeat=True)

    # webhooks ---------------------------------------------------------------------------------
    def _hubspot(self, *events: dict[str, Any], fault: Fault | None = None) -> WebhookAction:
        delivery = self._next_id()
        full = tuple({"eventId": int(self._next_id()), "portalId": 62515, **e} for e in events)
        action = WebhookAction(delivery, full, fault)
        if fault is None:
            self._sent.append(action)
            self.truth.webhooks += 1
        return action

    def _company_webhook(
        self, acct: CompanyRecord, action: str, fault: Fault | None = None
    ) -> WebhookAction:
        if action == "creation":
            props = {"name": acct.name, "domain": acct.domain, "lifecyclestage": "customer"}
            event: dict[str, Any] = {"subscriptionType": "company.creation", "properties": props}
        else:
            event = {
                "subscriptionType": "company.propertyChange",
                "propertyName": "phone",
                "propertyValue": f"+49 30 {self.rng.randrange(10**6, 10**7)}",
            }
        return self._hubspot({**event, "objectId": int(acct.company_id)}, fault=fault)

    # ERP changes ------------------------------------------------------------------------------
    def _change(
        self,
        table: str,
        op: Literal["c", "u", "d"],
        key: dict[str, Any],
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> ChangeAction:
        action = ChangeAction(table, op, key, before, after, self.next_lsn())
        self._changes.append(action)
        self.truth.erp_changes += 1
        return action

    def _product(self) -> Iterator[Action]:
        sku = f"SKU-{len(self._products) + 1:05d}"
        price = self.rng.randrange(500, 250_000)
        self._products.append((sku, price))
        yield self._change("products", "c", {"sku": sku}, None, product_row(sku, price))

    def _product_update(self) -> Iterator[Action]:
        index = self.rng.randrange(len(self._products))
        sku, old = self._products[index]
        new = max(100, old + self.rng.randrange(-old // 10, old // 10 + 1))
        self._products[index] = (sku, new)
        yield self._change(
            "products", "u", {"sku": sku}, product_row(sku, old), product_row(sku, new)
        )

    def customer_row(self, acct: CompanyRecord, **changes: Any) -> dict[str, Any]:
        """The ERP customers row of an account (the ERP's view of the company)."""
        return customer_row(acct, **changes)

    def _ownership_breach(self) -> Iterator[Action]:
        """The ERP renames a customer: the CRM owns the name, so it must never reach the CRM."""
        acct = self.rng.choice(self._accounts)
        renamed = f"{acct.name} ERP-RENAMED-{self._next_id()}"
        self.truth.add_ownership_breach(acct.company_id, acct.customer_number, "name", renamed)
        yield self._change(
            "customers",
            "u",
            {"customer_number": acct.customer_number},
            self.customer_row(acct),
            self.customer_row(acct, name=renamed),
        )

    # accounts and contacts --------------------------------------------------------------------
    def _new_account(self, dormant: bool = False) -> CompanyRecord:
        company = self._next_id()
        n = len(self._accounts) + len(self._dormant) + 1
        name = f"{self.rng.choice(WORDS)} {self.rng.choice(WORDS)} {self.rng.choice(SUFFIX)} {n}"
        acct = CompanyRecord(
            company,
            f"C{n:06d}",
            name,
            f"c{n}.{self.rng.choice(WORDS).lower()}.example",
            f"DE{self.rng.randrange(10**8, 10**9)}",
        )
        (self._dormant if dormant else self._accounts).append(acct)
        self.truth.accounts += 1
        return acct

    def _account_actions(self, acct: CompanyRecord) -> list[Action]:
        actions: list[Action] = [
            self._company_webhook(acct, "creation"),
            self._change(
                "customers",
                "c",
                {"customer_number": acct.customer_number},
                None,
                self.customer_row(acct),
            ),
        ]
        for _ in range(self.rng.randrange(1, 3)):
            contact = self._next_id()
            acct.contacts.append(contact)
            props = {
                "firstname": self.rng.choice(FIRST),
                "lastname": self.rng.choice(LAST),
                "email": f"p{contact}@{acct.domain}",
            }
            actions.append(
                self._hubspot(
                    {
                        "subscriptionType": "contact.creation",
                        "objectId": int(contact),
                        "properties": props,
                        "associatedCompanyId": acct.company_id,
                    }
                )
            )
        return actions

    def _account_episode(self) -> Iterator[Action]:
        yield from self._account_actions(self._new_account())

    def _contact_update(self) -> Iterator[Action]:
        acct = self.rng.choice(self._accounts)
        if not acct.contacts:
            return
        yield self._hubspot(
            {
                "subscriptionType": "contact.propertyChange",
                "objectId": int(self.rng.choice(acct.contacts)),
                "propertyName": "jobtitle",
                "propertyValue": "Head of Purchasing",
                "associatedCompanyId": acct.company_id,
            }
        )

    # quotes -----------------------------------------------------------------------------------
    def _lines(
        self, deal: str, company: str, revision: int, quantities: list[int]
    ) -> tuple[list[Action], list[dict[str, Any]], int]:
        out: list[Action] = []
        lines: list[dict[str, Any]] = []
        total = 0
        for position, qty in enumerate(quantities, start=1):
            sku, price = self.rng.choice(self._products)
            total += qty * price
            lines.append(
                {
                    "line_number": position,
                    "sku": sku,
                    "quantity": str(qty),
                    "unit_price": f"{price / 100:.2f}",
                    "description": f"{sku} x{qty}",
                }
            )
            out.append(
                self._hubspot(
                    {
                        "subscriptionType": "line_item.creation"
                        if revision == 1
                        else "line_item.propertyChange",
                        "objectId": int(deal) * 100 + position,
                        "associatedDealId": deal,
                        "associatedCompanyId": company,
                        "quoteRevision": revision,
                        "properties": {
                            "hs_sku": sku,
                            "quantity": str(qty),
                            "price": f"{price / 100:.2f}",
                            "name": f"{sku} x{qty}",
                            "hs_position_on_quote": str(position),
                        },
                    }
                )
            )
        return out, lines, total

    def _accept(
        self, deal: str, company: str, revision: int, lines: list[dict[str, Any]], amount: str
    ) -> WebhookAction:
        """The deal moves to closed-won; ``lines``/``amount`` are for dialects that send them."""
        return self._hubspot(
            {
                "subscriptionType": "deal.propertyChange",
                "objectId": int(deal),
                "propertyName": "dealstage",
                "propertyValue": "closedwon",
                "associatedCompanyId": company,
                "quoteRevision": revision,
                "lines": lines,
                "amount": amount,
                "currency": "EUR",
            }
        )

    def _quote_episode(self) -> Iterator[Action]:
        m, rng = self.mix, self.rng
        out_of_order = rng.random() < m.out_of_order
        acct = self._new_account() if out_of_order else rng.choice(self._accounts)
        deal = self._next_id()
        quote_id = crm_quote_id(deal, self.vendor)
        quantities = [rng.randrange(1, 20) for _ in range(rng.randrange(1, 5))]
        variant = rng.random()
        invalid = variant < m.invalid_quote
        withdrawn = not invalid and variant < m.invalid_quote + m.withdrawal
        why = ""
        if invalid:
            if rng.random() < 0.5:
                quantities, why = [], "no lines"
            else:
                quantities[rng.randrange(len(quantities))] = -rng.randrange(0, 3)
                why = "quantity <= 0"
        amount = sum(quantities) * 1000
        actions: list[Action] = [
            self._hubspot(
                {
                    "subscriptionType": "deal.creation",
                    "objectId": int(deal),
                    "associatedCompanyId": acct.company_id,
                    "quoteRevision": 1,
                    "properties": {
                        "dealname": f"{acct.name} order {deal}",
                        "amount": str(amount),
                        "deal_currency_code": "EUR",
                        "dealstage": "contractsent",
                    },
                }
            )
        ]
        line_actions, lines, total = self._lines(deal, acct.company_id, 1, quantities)
        actions += line_actions
        revised = False
        if withdrawn:
            actions.append(
                self._hubspot(
                    {
                        "subscriptionType": "deal.deletion",
                        "objectId": int(deal),
                        "associatedCompanyId": acct.company_id,
                    }
                )
            )
            self.truth.add_withdrawn(quote_id, deal)
        else:
            actions.append(self._accept(deal, acct.company_id, 1, lines, f"{total / 100:.2f}"))
            if invalid:
                self.truth.add_invalid(quote_id, 1, deal, why)
            else:
                self.truth.add_expected_order(quote_id, 1, deal, acct.company_id, out_of_order)
                if rng.random() < m.revision:
                    revised = True
                    requantified = [max(1, q + rng.randrange(-1, 3)) for q in quantities]
                    line_actions, lines, total = self._lines(deal, acct.company_id, 2, requantified)
                    actions += line_actions
                    actions.append(
                        self._accept(deal, acct.company_id, 2, lines, f"{total / 100:.2f}")
                    )
                    self.truth.revise_expected_order(quote_id, 2)
        if self._drift is not None and not (invalid or withdrawn or revised or out_of_order):
            drift = self._drift_action(quote_id, deal, acct)
            if drift is not None:  # first: the fakes know of it before the order can exist
                actions.insert(0, drift)
        if out_of_order:
            actions += self._account_actions(acct)
        yield from actions

    def _drift_action(self, quote_id: str, deal: str, acct: CompanyRecord) -> DriftAction | None:
        """The drift of this quote, if the schedule has one for it (one accepted revision, in
        order: an amend or a parked quote would race the drift)."""
        assert self._drift is not None
        self._eligible += 1
        due = self._drift.at(self._eligible)
        if due is None:
            return None
        kind, change = due
        on_quote = kind != "erp_order_by_hand"  # a hand-made order is the customer's, no quote's
        case = DriftCase(
            case_id=f"drift-{len(self.truth.drift) + 1}",
            kind=kind,
            quote_number=self._eligible,
            quote_id=quote_id if on_quote else None,
            deal_id=deal if on_quote else None,
            company_id=acct.company_id,
            customer_number=acct.customer_number,
            change=change,
        )
        self.truth.add_drift(case)
        return DriftAction(case)
