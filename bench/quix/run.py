"""Quote → order on Quix Streams beside the plain confluent-kafka loop, same broker, same input.

The input (accounts, then a burst of accepted quotes) and the measurement (quotes / (last
command's append time - first quote's append time), latency from append times) are those of
``bench.quote_to_order``; the Quix app is ``bench.quix.app``. When Quix Streams is missing or
cannot run against the broker, the reason is recorded in bench/results/quix.json instead of
failing. Prints a Markdown table.

    python -m bench.quix.run [--quotes N] [--accounts M]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.harness import kafka_bootstrap, write_result

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "quix.json"
NOTES = [
    "Quix peer: decode, merge the account (ownership policy), validate and dedup per "
    "(quote id, revision) in Quix state (RocksDB + changelog), emit the create-order command; "
    "it writes no audit records and keeps no event-id dedup table, so it does less per event "
    "than the Pipeline the plain loop runs",
    "the Quix run's topics are created with retention.ms set explicitly: Quix derives its "
    "changelog config from it and Tansu's DescribeConfigs returns only configs set at creation",
]


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

    from bench.quote_to_order import run as q2o
    from processors.topic_names import ProcessorTopics

    topics = ProcessorTopics(f"quix{uuid.uuid4().hex[:8]}.")
    _create_topics(AdminClient({"bootstrap.servers": bootstrap}), topics, q2o.PARTITIONS)
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
        q2o._produce(bootstrap, topics, quotes, accounts)
        q2o._wait(lambda: q2o._count(bootstrap, topics.create_order) >= quotes, 300, "quix orders")
    finally:
        app.terminate()
        app.wait(60)
        log.close()
    measured: dict[str, Any] = q2o._measure(bootstrap, topics)
    return measured.get("burst", measured)  # per phase since quote_to_order added a steady one


def run(quotes: int, accounts: int) -> dict[str, Any]:
    """Both sides on one broker; a result with ``status`` ok, or the reason it could not run."""
    result: dict[str, Any] = {"benchmark": "quix", "quotes": quotes, "notes": list(NOTES)}
    try:
        import quixstreams
    except ImportError as exc:
        return {**result, "status": "unavailable", "reason": f"quixstreams not installed: {exc}"}
    result["quixstreams"] = quixstreams.__version__
    from bench.quote_to_order import run as q2o

    tmp = ROOT / ".interlock" / "bench" / "quix"
    tmp.mkdir(parents=True, exist_ok=True)
    with kafka_bootstrap() as bootstrap:
        result["plain_confluent_loop"] = q2o.run_plain(bootstrap, quotes, accounts)
        try:
            result["quix_streams"] = _run_quix(bootstrap, quotes, accounts, tmp)
        except Exception as exc:
            return {**result, "status": "unsupported", "reason": f"{type(exc).__name__}: {exc}"}
    result["status"] = "ok"
    result["quix_vs_plain"] = round(
        result["quix_streams"]["events_per_s"] / result["plain_confluent_loop"]["events_per_s"], 3
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quotes", type=int, default=20_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    args = parser.parse_args()
    result = run(args.quotes, args.accounts)
    write_result(RESULTS, result)
    from bench.sections import quix_section

    print(quix_section(result).markdown())


if __name__ == "__main__":
    main()
