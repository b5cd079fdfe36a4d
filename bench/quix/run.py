"""Quote → order on Quix Streams beside the Faust worker and the plain loop, same input.

The input (accounts, then a burst of accepted quotes) and the measurement (quotes / (last
command's append time - first quote's append time), latency from append times) are those of
``bench.quote_to_order``; the Quix app is ``bench.quix.app``, which does the Pipeline's work
per event (event-id dedup, account merge, quote decision, commercial policy gate, order state,
an audit record per decision). After a warm-up burst on a throw-away Faust worker (not
measured: a fresh JVM broker is slower until it has compiled its hot paths), the three run
``--rounds`` times each in ABBA order on one broker (Faust, Quix, plain, plain, Quix, Faust,
...), each run on its own topics and once the machine is quiet after the run before
(``bench.quote_to_order.bursts.settle``), so that a host that drifts over the minutes of the
run favours none of them and no run pays for the one before; a variant's figure is all its
runs' quotes over all their seconds, as in ``bench.quote_to_order``. Each run also reports its
process's CPU per quote. When Quix Streams is missing or cannot run against the broker, the
reason is recorded in bench/results/quix.json instead of failing. Prints a Markdown table.

    python -m bench.quix.run [--quotes N] [--accounts M] [--store rocksdb://] [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.harness import kafka_bootstrap, write_result
from bench.quote_to_order.bursts import abba, alternate, combine, peak_rss_mb, process_cpu_s
from interlock.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "quix.json"
TARGET_FAUST_VS_QUIX = 1.0
DOES = [
    "decode each record (same codec)",
    "event-id dedup in Quix state keyed by event id (the Pipeline's `seen` table: time and "
    "partition, the same TTL), so a duplicate event id is dropped and audited",
    "merge the account under the ownership policy, audit it",
    "decide the quote (validation, dedup per quote id and revision), pass the commercial "
    "policy gate (a case read, the limits), keep the order state and the first-order flag",
    "produce the create-order command keyed by account id and an audit record per decision "
    "(`processors.audit`, keyed by correlation id) to the audit topic",
]
OMITS = [
    "the read-back of its own commands (folding each into the order state, the cause marked "
    "seen, the reconciliation ledger): Quix commits state, outputs and offsets together at its "
    "checkpoint, so it keeps the order state when it emits; compare with the Faust figure to "
    "the last command, not the one including read-back",
    "the account identity index (match keys written per account event, for linking by "
    "search); the benchmark's accounts arrive linked, so no search runs on either side",
    "the Pipeline's Prometheus metrics per event, the read-back header on commands, the "
    "parking lot (a quote whose account is unknown is audited, never released) and the timers "
    "(parked scan, TTL sweep: none falls due within the run)",
]
NOTES = [
    "the Quix run's topics are created with retention.ms set explicitly: Quix derives its "
    "changelog config from it and Tansu's DescribeConfigs returns only configs set at creation",
]


class _QuixError(Exception):
    """Quix Streams could not run against the broker: the result says so instead of figures."""


def _create_topics(admin: Any, topics: Any, partitions: int) -> None:
    """The quote→order topics with retention set explicitly.

    Quix derives its changelog config from the input topics' ``retention.ms``, and Tansu's
    DescribeConfigs returns only configs set at creation (KeyError 'retention.ms' otherwise).
    """
    from confluent_kafka.admin import NewTopic

    config = {"retention.ms": str(7 * 24 * 3600 * 1000), "retention.bytes": "-1"}
    names = [*topics.copartitioned(), topics.audit, topics.review, topics.cases]
    futures = admin.create_topics([NewTopic(n, partitions, 1, config=config) for n in names])
    for future in futures.values():
        future.result(30)


def _run_quix(bootstrap: str, quotes: int, accounts: int, tmp: Path) -> dict[str, Any]:
    import uuid

    from confluent_kafka.admin import AdminClient

    from bench.quote_to_order import records
    from processors.topic_names import ProcessorTopics

    topics = ProcessorTopics(f"quix{uuid.uuid4().hex[:8]}.")
    _create_topics(AdminClient({"bootstrap.servers": bootstrap}), topics, records.PARTITIONS)
    log = (tmp / f"quix-{topics.prefix.strip('.')}.log").open("wb")
    app = subprocess.Popen(
        [sys.executable, "-m", "bench.quix.app", bootstrap, topics.prefix, str(tmp / "state")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=log,
    )
    try:
        assert app.stdout is not None
        line = app.stdout.readline().strip()
        if line != b"ready":
            raise RuntimeError(f"Quix app did not start (exit {app.poll()}); see {log.name}")
        cpu_before = process_cpu_s([app.pid])
        records.produce(bootstrap, topics, quotes, accounts)
        records.wait_for(
            lambda: records.count(bootstrap, topics.create_order) >= quotes, 300, "quix orders"
        )
        # one decision per input record: the audit is complete once it holds as many
        records.wait_for(
            lambda: records.count(bootstrap, topics.audit) >= quotes + accounts, 60, "audit"
        )
        cpu_s = process_cpu_s([app.pid]) - cpu_before
        peak_mb = peak_rss_mb([app.pid])
    finally:
        app.terminate()
        app.wait(60)
        log.close()
    measured: dict[str, Any] = records.measure(bootstrap, topics)["burst"]
    measured["audit_records"] = records.count(bootstrap, topics.audit)
    measured["cpu_us_per_quote"] = round(cpu_s / quotes * 1e6)
    measured["peak_rss_mb"] = peak_mb
    return measured


def run(quotes: int, accounts: int, store: str, rounds: int = 4) -> dict[str, Any]:
    """All three on one broker, ABBA; a result with ``status`` ok, or why it could not run."""
    result: dict[str, Any] = {
        "benchmark": "quix",
        "quotes": quotes,
        "accounts": accounts,
        "store": store,
        "rounds": rounds,
        "target_faust_vs_quix": TARGET_FAUST_VS_QUIX,
        "quix_does": list(DOES),
        "quix_omits": list(OMITS),
        "notes": list(NOTES),
    }
    try:
        import quixstreams
    except ImportError as exc:
        return {**result, "status": "unavailable", "reason": f"quixstreams not installed: {exc}"}
    result["quixstreams"] = quixstreams.__version__
    from bench.quote_to_order import run as q2o

    tmp = ROOT / ".interlock" / "bench" / "quix"
    tmp.mkdir(parents=True, exist_ok=True)
    order = abba(["faust", "quix", "plain"], rounds)
    result["order"] = order

    def burst(variant: str) -> dict[str, Any] | None:
        if variant == "plain":
            return q2o.run_plain(bootstrap, quotes, accounts)
        if variant == "quix":
            try:
                return _run_quix(bootstrap, quotes, accounts, tmp)
            except Exception as exc:
                raise _QuixError(f"{type(exc).__name__}: {exc}") from exc
        if "faust_error" in result:
            return None
        try:
            return q2o.run_faust(bootstrap, quotes, accounts, tmp, store=store)["burst"]
        except Exception as exc:  # Quix's figures still count; the section says what failed
            result["faust_error"] = f"{type(exc).__name__}: {exc}"
            return None

    with kafka_bootstrap() as bootstrap:
        try:
            warm = q2o.run_faust(bootstrap, quotes, accounts, tmp, store=store)["burst"]
            result["warm_up"] = {"quotes": quotes, "events_per_s": warm["events_per_s"]}
        except Exception as exc:  # the measured Faust runs will say it again, or not
            result["warm_up"] = {"quotes": quotes, "error": f"{type(exc).__name__}: {exc}"}
        try:
            bursts, positions = alternate(order, burst)
        except _QuixError as failed:
            return {**result, "status": "unsupported", "reason": str(failed)}
    result["status"] = "ok"
    result["plain_confluent_loop"] = combine(bursts["plain"], positions["plain"])
    quix = combine(bursts["quix"], positions["quix"])
    quix["audit_records"] = min(b["audit_records"] for b in bursts["quix"])
    result["quix_streams"] = quix
    result["quix_vs_plain"] = round(
        quix["events_per_s"] / result["plain_confluent_loop"]["events_per_s"], 3
    )
    if "faust_error" not in result:
        faust = combine(bursts["faust"], positions["faust"])
        result["faust_worker"] = faust
        result["faust_vs_quix"] = round(faust["events_per_s"] / quix["events_per_s"], 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quotes", type=int, default=20_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument(
        "--store",
        default=load_settings().processors.store,
        help="the Faust worker's table store (default: INTERLOCK_PROCESSORS__STORE's)",
    )
    parser.add_argument(
        "--rounds", type=int, default=4, help="runs of each of Faust, Quix and the plain loop, ABBA"
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    result = run(args.quotes, args.accounts, args.store, args.rounds)
    write_result(RESULTS, result)
    from bench.sections.worker import quix_section

    print(quix_section(result).markdown())


if __name__ == "__main__":
    main()
