"""Names of the topics the processors read and write, with the configured prefix."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from contracts.topics import CLOCK_SUFFIX
from interlock.settings import Settings

__all__ = ["CLOCK_SUFFIX", "ProcessorTopics"]


@dataclass(frozen=True)
class ProcessorTopics:
    """Every topic of the processors; ``prefix`` isolates a deployment (or a test).

    Names are computed once per instance (``cached_property``): the pipeline asks for some of
    them several times per event."""

    prefix: str = ""

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @classmethod
    def from_settings(cls, settings: Settings) -> ProcessorTopics:
        return cls(settings.processors.topic_prefix)

    @cached_property
    def account(self) -> str:
        return self.name("canonical.account.v1")

    @cached_property
    def quote(self) -> str:
        return self.name("canonical.quote.v1")

    @cached_property
    def order(self) -> str:
        return self.name("canonical.order.v1")

    @cached_property
    def invoice(self) -> str:
        return self.name("canonical.invoice.v1")

    @cached_property
    def shipment(self) -> str:
        return self.name("canonical.shipment.v1")

    @cached_property
    def product(self) -> str:
        return self.name("canonical.product.v1")

    @cached_property
    def create_order(self) -> str:
        return self.name("commands.erp.create-order")

    @cached_property
    def amend_order(self) -> str:
        return self.name("commands.erp.amend-order")

    @cached_property
    def cancel_order(self) -> str:
        return self.name("commands.erp.cancel-order")

    @cached_property
    def update_deal(self) -> str:
        return self.name("commands.crm.update-deal")

    @cached_property
    def review(self) -> str:
        return self.name("review.account-match")

    @cached_property
    def account_match(self) -> str:
        """The worker's own exchange for linking accounts across partitions
        (``processors.linking``): snapshots keyed by match key, answers keyed by account."""
        return self.name("link.account-match")

    @cached_property
    def erp_forwarded(self) -> str:
        """ERP changes of a linked customer, forwarded to its CRM account's partition, where
        the quotes they concern are kept (``Pipeline.on_erp_change``)."""
        return self.name("link.erp-changes")

    @cached_property
    def cases(self) -> str:
        return self.name("review.cases")

    @cached_property
    def decisions(self) -> str:
        return self.name("review.decisions")

    @cached_property
    def audit(self) -> str:
        return self.name("audit.decisions")

    @cached_property
    def reconciliation(self) -> str:
        return self.name("audit.reconciliation")

    def canonical_inputs(self) -> list[str]:
        """Canonical topics the main agent consumes (all keyed by canonical account id)."""
        return [self.account, self.quote, self.order, self.invoice, self.shipment]

    def commands(self) -> list[str]:
        """Command topics, read back so that state follows only what is durable."""
        return list(self._command_topics.values())

    def copartitioned(self) -> list[str]:
        """Topics that must share one partition count."""
        return [*self.canonical_stream(), *self.commands()]

    def canonical_stream(self) -> list[str]:
        """What the worker's canonical agent reads, all keyed by account (or, on the match
        index's exchange, by match key): the canonical inputs, people's decisions, and the
        worker's own exchanges for linking and forwarded ERP changes."""
        return [*self.canonical_inputs(), self.decisions, self.account_match, self.erp_forwarded]

    def command_topic(self, kind: str) -> str:
        return self._command_topics[kind]

    @cached_property
    def _command_topics(self) -> dict[str, str]:
        return {
            "create-order": self.create_order,
            "amend-order": self.amend_order,
            "cancel-order": self.cancel_order,
            "update-deal": self.update_deal,
        }

    def clock(self, app_id: str) -> str:
        """The worker's clock topic: its ticks drive the parked scan and the dedup sweep."""
        return self.name(f"{app_id}{CLOCK_SUFFIX}")
