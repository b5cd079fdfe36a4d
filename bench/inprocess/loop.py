"""Time ``Pipeline.handle`` per accepted quote in process, on dict tables: one tree's figure.

Run as a script (``python bench/inprocess/loop.py``), never as ``bench.inprocess.loop``: it
imports only ``contracts``, ``interlock`` and ``processors``, so with ``PYTHONPATH`` set to
another checkout it measures that checkout's pipeline (``bench.inprocess.run`` runs it against
the baseline revision and the working tree in the same run). It uses no API newer than that
baseline.

The input is what the stages write: accounts, then accepted quotes of 2 to 5 lines each in the
single-object encoding, and a share of redelivered quotes (the same bytes again). Every record
goes through ``handle``; every command it writes is then read back through ``on_command``, as
the worker's commands agent does once the command is durable. Prints one JSON object.

    python bench/inprocess/loop.py [--quotes N] [--repeats R] [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import operator
import statistics
import sys
import time
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from contracts import (
    Account,
    AccountEvent,
    Address,
    Quote,
    QuoteEvent,
    QuoteLine,
    Source,
    deterministic_event_id,
    encode,
)
from contracts.ownership import load_ownership
from contracts.policy import load_policy
from interlock.instruments import Instruments
from interlock.metrics import new_registry
from interlock.settings import Settings
from processors.output import Codecs
from processors.pipeline import Pipeline, PipelineConfig
from processors.state import Tables

# The module names of this tree, else those of the baseline revision (same classes).
try:
    from interlock.records import RawRecord
    from processors.topic_names import ProcessorTopics
except ImportError:  # the baseline tree
    from processors.topics import ProcessorTopics  # type: ignore[import-not-found,no-redef]

    from interlock.deadletter import RawRecord  # type: ignore[attr-defined,no-redef]

PARTITIONS = 6
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ADDRESS = Address(line1="1 Harbor Way", city="Rotterdam", postal_code="3011", country_code="NL")
TOPICS = ProcessorTopics("bench.")

Input = list[tuple[str, int, bytes, bytes]]
"""Records to handle: topic, partition, key, value."""


def _source(system: str, record_id: str, at: datetime) -> Source:
    vendor = "hubspot" if system == "crm" else "pg-erp"
    return Source(system=system, vendor=vendor, record_id=record_id, changed_at=at)  # type: ignore[arg-type]


def _account(account_id: str) -> AccountEvent:
    return AccountEvent(
        event_id=deterministic_event_id("erp", "account", account_id, "1"),
        event_type="AccountChanged",
        source=_source("erp", account_id, T0),
        correlation_id=account_id,
        occurred_at=T0,
        payload=Account(
            account_id=account_id,
            erp_customer_number=f"C-{account_id}",
            currency="EUR",
            payment_terms="NET30",
            credit_hold=False,
            billing_address=ADDRESS,
        ),
    )


def _quote(quote_id: str, account_id: str, lines: int) -> QuoteEvent:
    at = T0 + timedelta(minutes=1)
    items = [
        QuoteLine(
            line_number=i,
            product_id=f"P-{i}",
            sku=f"SKU-{i}",
            quantity=Decimal(1 + i % 3),
            unit_price=Decimal(f"{10 + i}.50"),
            line_total=Decimal(1 + i % 3) * Decimal(f"{10 + i}.50"),
        )
        for i in range(1, lines + 1)
    ]
    subtotal = sum((line.line_total or Decimal(0) for line in items), Decimal("0.00"))
    tax = (subtotal * Decimal("0.21")).quantize(Decimal("0.01"))
    return QuoteEvent(
        event_id=deterministic_event_id("crm", "quote", quote_id, "1", "ACCEPTED", "1"),
        event_type="QuoteAccepted",
        source=_source("crm", quote_id, at),
        correlation_id=quote_id,
        occurred_at=at,
        payload=Quote(
            quote_id=quote_id,
            revision=1,
            account_id=account_id,
            status="ACCEPTED",
            crm_deal_id=f"deal-{quote_id}",
            currency="EUR",
            payment_terms="NET30",
            ship_to=ADDRESS,
            accepted_at=at,
            lines=items,
            subtotal=subtotal,
            tax_total=tax,
            total=subtotal + tax,
        ),
    )


def build_input(quotes: int, accounts: int, duplicates: float) -> tuple[Input, Input]:
    """(accounts, quotes): every ``1/duplicates``-th quote is delivered a second time later."""
    account_records = [
        (TOPICS.account, a % PARTITIONS, f"a{a}".encode(), encode(_account(f"a{a}")))
        for a in range(accounts)
    ]
    originals = [
        (TOPICS.quote, q % accounts % PARTITIONS, f"a{q % accounts}".encode(),
         encode(_quote(f"q{q}", f"a{q % accounts}", 2 + q % 4)))
        for q in range(quotes)
    ]  # fmt: skip
    every = round(1 / duplicates) if duplicates > 0 else 0
    quote_records: Input = []
    for q, record in enumerate(originals):
        quote_records.append(record)
        if every and q % every == every - 1:
            quote_records.append(originals[q - every // 2])  # a redelivery, a little later
    return account_records, quote_records


class Run:
    """One pipeline on fresh dict tables whose commands are read back as they are written."""

    def __init__(self, codecs: Codecs) -> None:
        self.written: list[tuple[str, bytes | None, bytes, Any]] = []
        self.dead: list[tuple[RawRecord, BaseException]] = []
        self.read = 0
        self.offset = 0
        self.quotes_from = 0
        """Index of the first record written for the quotes (after the accounts')."""
        names = [f.name for f in fields(Tables) if f.name != "expiry"]
        self.pipeline = Pipeline(
            PipelineConfig(TOPICS, load_ownership(), 300.0, 3600.0, 0.85, commercial=load_policy()),
            Tables(**{name: {} for name in names}),
            decode=codecs.decode,
            encode=codecs.encode,
            emit=lambda topic, key, value, headers=None: self.written.append(
                (topic, key, value, headers)
            ),
            dead_letter=lambda raw, exc, durable=False: self.dead.append((raw, exc)),
            instruments=Instruments(new_registry(), "bench"),
        )
        self.commands = frozenset(TOPICS.commands())

    def feed(self, records: Input) -> None:
        handle, on_command = self.pipeline.handle, self.pipeline.on_command
        commands, written = self.commands, self.written
        for topic, partition, key, value in records:
            self.offset += 1
            handle(RawRecord(topic, partition, self.offset, key, value, ()))
            while self.read < len(written):
                out_topic, out_key, out_value, headers = written[self.read]
                self.read += 1
                if out_topic in commands:
                    self.offset += 1
                    on_command(
                        RawRecord(
                            out_topic,
                            partition,
                            self.offset,
                            out_key,
                            out_value,
                            tuple(headers or ()),
                        )
                    )


def measure(
    codecs: Codecs, accounts: Input, quotes: Input, *, counted: bool = True
) -> tuple[float, Run]:
    """CPU seconds to handle ``quotes`` (and read back their commands), accounts handled before.

    CPU time of this process, not wall time: on a shared machine the wait for a core is not
    the pipeline's cost. ``counted``: the feed runs inside ``operator.call``, as nothing else
    does; ``bench.inprocess.run`` counts instructions only inside its C function."""
    run = Run(codecs)
    run.feed(accounts)
    run.quotes_from = len(run.written)
    started = time.process_time()
    if counted:
        operator.call(run.feed, quotes)
    else:
        run.feed(quotes)
    return time.process_time() - started, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quotes", type=int, default=5000)
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--duplicates", type=float, default=0.1, help="share redelivered")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", help="write a cProfile of one more repeat to this file")
    args = parser.parse_args(argv)
    codecs = Codecs(Settings(_env_file=None))
    accounts, quotes = build_input(args.quotes, args.accounts, args.duplicates)
    _, warm = measure(codecs, accounts, quotes[: max(200, len(quotes) // 5)], counted=False)
    seconds = []
    run = warm
    for _ in range(args.repeats):
        elapsed, run = measure(codecs, accounts, quotes)
        seconds.append(elapsed)
    if args.profile:  # the quotes only, as timed
        profiled = Run(codecs)
        profiled.feed(accounts)
        profile = cProfile.Profile(time.process_time)
        profile.runcall(profiled.feed, quotes)
        profile.dump_stats(args.profile)
    commands = sum(1 for t, *_ in run.written if t in run.commands)
    if commands != args.quotes or run.dead:
        print(f"expected {args.quotes} commands and no dead letters, got {commands} commands "
              f"and {len(run.dead)} dead letters", file=sys.stderr)  # fmt: skip
        return 1
    per_record = [s / len(quotes) * 1e6 for s in seconds]
    print(
        json.dumps(
            {
                "quotes": args.quotes,
                "records": len(quotes),
                "duplicates": len(quotes) - args.quotes,
                "accounts": args.accounts,
                "repeats": args.repeats,
                "us_per_quote": statistics.median(per_record),
                "us_per_quote_all": [round(x, 2) for x in per_record],
                "outputs_per_quote": (len(run.written) - run.quotes_from) / len(quotes),
                "pipeline": sys.modules[Pipeline.__module__].__file__,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
