"""Benchmark quote → order: the Faust worker beside a plain confluent-kafka loop, same run.

Both run the same pipeline (decode, dedup, account join, validation, create-order command,
audit record, command read-back) on the same input, one after the other, on one broker (the
embedded one unless KAFKA_BOOTSTRAP_SERVERS is set). Each processor is started and ready
before the input is produced, so latency is from the quote's append (Kafka timestamp) to its
command's append. Scenarios, all on 6 partitions:

- burst: N quotes produced at once; events/s = quotes / (last command - first quote);
- steady: quotes produced at a fixed rate (``--rates``, ``--steady-s`` each) to the same
  1-worker process after its burst: p50/p99 latency at an offered load, not behind a queue;
- two workers: two worker processes in one group, same burst; the scaling ratio vs one;
- the plain loop: the same burst through the baseline;
- the plain loop with changelogs: the same, its tables writing the worker's changelogs as the
  worker's tables do (the worker's cost beside the plain loop's, split into durable state's
  and Faust's).

The bursts that the ratios compare (the default store, ``--compare-store``, the plain loop, the
plain loop with changelogs) run ``--rounds`` times each in ABBA order (4 by default: default,
other, plain, changelogs, changelogs, plain, other, default, and again), so each has the same
mean position in the run and a host that drifts slower or faster over minutes does not favour
the one that ran first. (With 2 rounds, two
``make bench`` runs of the same code put ``rocksdb://`` at 0.68x and 1.01x ``memory://``: one
burst of a store differed from its other by up to 40%.) Each burst also reports its
process's CPU per quote (/proc, from the first quote produced to the last command read back)
and its peak resident memory (VmHWM: start-up and the burst).

Results: ``bench/results/quote_to_order.json`` and a Markdown table.

    python -m bench.quote_to_order.run [--quotes N] [--accounts M] [--rates 1000,5000]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import threading
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from confluent_kafka.admin import AdminClient  # noqa: E402

from bench.harness import broker_label, kafka_bootstrap, write_result  # noqa: E402
from bench.quote_to_order.bursts import (  # noqa: E402
    abba,
    alternate,
    combine,
    peak_rss_mb,
    process_cpu_s,
)
from bench.quote_to_order.records import (  # noqa: E402
    PARTITIONS,
    count,
    create_topics,
    create_worker_topics,
    measure,
    produce,
    wait_for,
)
from interlock.broker import free_port  # noqa: E402
from interlock.settings import load_settings  # noqa: E402
from processors.topic_names import ProcessorTopics  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "quote_to_order.json"


def _faust_ready(port: int, ticks: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return False
    return any(ticks in line and "consumed_total" in line for line in text.splitlines())


def run_faust(
    bootstrap: str,
    quotes: int,
    accounts: int,
    tmp: Path,
    *,
    workers: int = 1,
    rates: tuple[int, ...] = (),
    steady_s: float = 10.0,
    store: str,
) -> dict[str, dict[str, Any]]:
    """``workers`` worker processes in one group: a burst, then the steady ``rates``."""
    tag = uuid.uuid4().hex[:8]
    topics = ProcessorTopics(f"bench{tag}.")
    app_id = f"bench-{tag}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    create_topics(admin, topics)
    create_worker_topics(admin, topics, app_id)
    procs: list[subprocess.Popen[bytes]] = []
    ports = [free_port() for _ in range(workers)]
    try:
        for n, port in enumerate(ports):
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
                "INTERLOCK_PROCESSORS__APP_ID": app_id,
                "INTERLOCK_PROCESSORS__TOPIC_PREFIX": topics.prefix,
                "INTERLOCK_PROCESSORS__SESSION_TIMEOUT_S": "6",
                "INTERLOCK_PROCESSORS__STORE": store,
                "INTERLOCK_PROCESSORS__DATA_DIR": str(tmp / tag / str(n)),
                "INTERLOCK_METRICS__PORT": str(port),
                # BENCH_WORKER_LOG_LEVEL=INFO to see rebalances and recoveries in the logs
                "INTERLOCK_LOG_LEVEL": os.environ.get("BENCH_WORKER_LOG_LEVEL", "WARNING"),
            }
            with (tmp / f"faust-{tag}-{n}.log").open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "interlock.cli", "worker"],
                        env=env,
                        cwd=tmp,
                        stdout=log,
                        stderr=log,
                    )
                )
        ticks = f"{topics.prefix}{app_id}-ticks"
        for port in ports:
            wait_for(lambda port=port: _faust_ready(port, ticks), 120, "faust ready")
        changelog = f"{app_id}-orders-changelog"

        def done(want: int) -> bool:
            # Commands emitted and read back (the orders table has one key per quote).
            return (
                count(bootstrap, topics.create_order) >= want
                and count(bootstrap, changelog) >= want
            )

        pids = [proc.pid for proc in procs]
        cpu_before = process_cpu_s(pids)
        produce(bootstrap, topics, quotes, accounts)
        wait_for(lambda: done(quotes), 600, "faust orders")
        cpu_s = process_cpu_s(pids) - cpu_before
        peak_mb = peak_rss_mb(pids)  # start-up and the burst, before any steady load
        expected = quotes
        for rate in rates:
            n = int(rate * steady_s)
            produce(bootstrap, topics, n, accounts, phase=f"rate{rate}", rate=rate)
            expected += n
            want = expected
            wait_for(lambda want=want: done(want), 600, "steady orders")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)
    phases = measure(bootstrap, topics, changelog)
    phases["burst"]["cpu_us_per_quote"] = round(cpu_s / quotes * 1e6)
    phases["burst"]["peak_rss_mb"] = peak_mb
    return phases


def run_plain(
    bootstrap: str, quotes: int, accounts: int, *, changelogs: bool = False
) -> dict[str, Any]:
    """The plain loop's burst; with ``changelogs``, its tables write the worker's changelogs."""
    tag = uuid.uuid4().hex[:8]
    topics = ProcessorTopics(f"plain{tag}.")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    create_topics(admin, topics)
    app_id = [f"plain-{tag}"] if changelogs else []
    if changelogs:
        create_worker_topics(admin, topics, app_id[0])
    loop = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.quote_to_order.plain_loop",
            bootstrap,
            topics.prefix,
            str(PARTITIONS),
            *app_id,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
    )
    read_back: list[tuple[int, int]] = []
    try:
        assert loop.stdout is not None
        assert loop.stdout.readline().strip() == b"ready"
        stdout = loop.stdout

        def follow() -> None:
            for line in stdout:
                match line.split():
                    case [b"read_back", count, at_ms]:
                        read_back.append((int(count), int(at_ms)))
                    case _:
                        sys.stderr.write(f"plain loop: {line.decode(errors='replace')}")

        threading.Thread(target=follow, daemon=True).start()
        cpu_before = process_cpu_s([loop.pid])
        produce(bootstrap, topics, quotes, accounts)
        wait_for(lambda: count(bootstrap, topics.create_order) >= quotes, 600, "plain orders")
        wait_for(lambda: bool(read_back) and read_back[-1][0] >= quotes, 600, "plain read-back")
        cpu_s = process_cpu_s([loop.pid]) - cpu_before
        peak_mb = peak_rss_mb([loop.pid])
    finally:
        loop.terminate()
        loop.wait(30)
    burst = measure(bootstrap, topics, read_back_done_ms=read_back[-1][1])["burst"]
    burst["cpu_us_per_quote"] = round(cpu_s / quotes * 1e6)
    burst["peak_rss_mb"] = peak_mb
    return burst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quotes", type=int, default=20_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--rates", default="1000,5000", help="steady offered loads, events/s")
    parser.add_argument("--steady-s", type=float, default=10.0)
    parser.add_argument("--no-scaling", action="store_true", help="skip the 2-worker run")
    parser.add_argument(
        "--store",
        default=load_settings().processors.store,
        help="the workers' table store (default: INTERLOCK_PROCESSORS__STORE's)",
    )
    parser.add_argument(
        "--warm-up-quotes",
        type=int,
        default=None,
        help="a burst on a throw-away worker first, not measured (default: --quotes; 0: none): "
        "a fresh JVM broker is several times slower until it has compiled its hot paths, and "
        "the first measured run would pay for that alone",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="runs of each compared burst (default store, --compare-store, plain loop, plain "
        "loop with changelogs), ABBA",
    )
    parser.add_argument(
        "--compare-store",
        default="",
        help="also a 1-worker burst on this store (make bench: memory://), beside the default's",
    )
    args = parser.parse_args()
    rates = tuple(int(r) for r in args.rates.split(",") if r)
    tmp = ROOT / ".interlock" / "bench"
    tmp.mkdir(parents=True, exist_ok=True)
    warm_up_quotes = args.quotes if args.warm_up_quotes is None else args.warm_up_quotes
    other_store = args.compare_store if args.compare_store != args.store else ""
    variants = ["default", *(["other"] if other_store else []), "plain", "changelogs"]
    order = abba(variants, args.rounds)
    one: dict[str, dict[str, Any]] = {}

    def burst(variant: str) -> dict[str, Any]:
        nonlocal one
        if variant in ("plain", "changelogs"):
            return run_plain(
                bootstrap, args.quotes, args.accounts, changelogs=variant == "changelogs"
            )
        if variant == "other":
            return run_faust(bootstrap, args.quotes, args.accounts, tmp, store=other_store)["burst"]
        if not one:  # the first run of the default store also takes the steady loads
            one = run_faust(bootstrap, args.quotes, args.accounts, tmp, rates=rates,
                            steady_s=args.steady_s, store=args.store)  # fmt: skip
            return one["burst"]
        return run_faust(bootstrap, args.quotes, args.accounts, tmp, store=args.store)["burst"]

    with kafka_bootstrap() as bootstrap:
        warm_up = None
        if warm_up_quotes > 0:
            warm_up = run_faust(bootstrap, warm_up_quotes, args.accounts, tmp, store=args.store)[
                "burst"
            ]
        bursts, positions = alternate(order, burst)
        two = None
        two_error = None
        if not args.no_scaling:
            try:
                two = run_faust(
                    bootstrap, args.quotes, args.accounts, tmp, workers=2, store=args.store
                )["burst"]
            except TimeoutError as exc:  # the others are still measured; the table says so
                two_error = (
                    f"2 workers: no result within the deadline ({exc}), "
                    f"see the workers' logs in {tmp.relative_to(ROOT)}"
                )
    faust, plain, durable = (
        combine(bursts[v], positions[v]) for v in ("default", "plain", "changelogs")
    )
    other = combine(bursts["other"], positions["other"]) if other_store else None
    steady = {f"{rate}_per_s": one[f"rate{rate}"] for rate in rates}
    result: dict[str, Any] = {
        "benchmark": "quote_to_order",
        "partitions": PARTITIONS,
        "store": args.store,
        "faust_worker": faust,
        "faust_steady": steady,
        "faust_two_workers": two,
        "faust_two_workers_error": two_error,
        "faust_worker_other_store": {**other, "store": other_store} if other else None,
        "rounds": args.rounds,
        "order": order,
        "scaling_two_vs_one": round(two["events_per_s"] / faust["events_per_s"], 3)
        if two
        else None,
        "plain_confluent_loop": plain,
        "plain_loop_with_changelogs": durable,
        "warm_up": {
            "quotes": warm_up_quotes,
            "store": args.store,
            "events_per_s": warm_up["events_per_s"] if warm_up else None,
        },
        "faust_vs_plain": round(faust["events_per_s"] / plain["events_per_s"], 3),
        "faust_vs_plain_incl_read_back": round(
            faust["events_per_s_incl_read_back"] / plain["events_per_s_incl_read_back"], 3
        ),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "broker": broker_label(),
        "note": "burst: input produced at once after the processors are ready, latency includes "
        "queueing behind the burst, events/s = quotes / (last command time - first quote time); "
        "incl. read-back: up to the read-back of the last command instead; "
        "steady: quotes offered at a fixed rate to the first 1-worker process on the default "
        "store, after its burst; "
        "every measured run follows a warm-up burst on a throw-away worker (not measured), so "
        "none pays for the fresh broker's start-up",
    }
    write_result(RESULTS, result)
    print("| run | quotes | events/s | incl. read-back | p50 latency (s) | p99 latency (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = [("Faust, 1 worker, burst", faust)]
    rows += [(f"Faust, 1 worker, steady {rate}/s", one[f"rate{rate}"]) for rate in rates]
    if two:
        rows.append(("Faust, 2 workers, burst", two))
    rows.append(("plain confluent-kafka loop, burst", plain))
    rows.append(("plain loop with the worker's changelogs, burst", durable))
    for name, r in rows:
        print(
            f"| {name} | {r['quotes']} | {r['events_per_s']} | "
            f"{r.get('events_per_s_incl_read_back', '')} | {r['latency_p50_s']} | "
            f"{r['latency_p99_s']} |"
        )
    print(
        f"\nFaust/plain = {result['faust_vs_plain']} (incl. read-back "
        f"{result['faust_vs_plain_incl_read_back']}, target ≥ 0.8 both); "
        f"2 workers / 1 = {result['scaling_two_vs_one']}"
    )


if __name__ == "__main__":
    main()
