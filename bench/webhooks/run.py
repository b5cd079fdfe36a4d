"""Webhook ingest: signed Standard-Webhooks requests landed with acks=all vs a bare endpoint.

Same server, same run: ``POST /webhooks/standard/bench`` (verify, land raw, await the broker's
acknowledgement) beside ``POST /bench/noop`` (read the body, answer), in alternated slices (bare,
signed, bare, signed, ...), so that a machine that gets slower or faster during the run moves
both figures alike rather than the ratio; each endpoint's figures are the sums over its slices
(latency: the median of the slices' percentiles, the largest maximum). The server is one
receiver process (uvicorn, as ``interlock webhooks`` runs it). The load comes from ``wrk``
(one thread, ``--connections`` keep-alive connections, ``presigned.lua``) sending requests
signed beforehand: every one has its own ``webhook-id``, a fresh timestamp and the real
signature with the source's secret, so the load generator signs nothing while it runs. Both
endpoints get the same requests.

During each run the CPU time of wrk, of the server (the whole process, and its event-loop
thread alone) and of the embedded broker is read from /proc: the generator is not the
bottleneck when wrk uses a fraction of the core the event loop saturates. After the signed run
the raw topic's records are counted: each 2xx answer means a landed record, so the topic holds
at least as many as wrk counted 2xx answers, and at most as many as it sent (requests still in
flight when wrk stops may land unanswered).
Writes bench/results/webhooks.json and prints a Markdown table. Needs ``wrk``
(``make bench-tools``).

    python -m bench.webhooks.run [--duration 12] [--slices 3] [--connections 64]
    python -m bench.webhooks.run --sweep 1,4,16,64 [--duration 6]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

from bench.harness import write_result
from connectors.webhooks.service import build_receiver, receiver_server
from interlock.broker import free_port
from interlock.instruments import Instruments
from interlock.kafka import true_end_offsets
from interlock.metrics import new_registry
from interlock.settings import Settings, StandardWebhookSettings, WebhookSettings

SECRET = "whsec_" + base64.b64encode(b"bench-secret-0123456789").decode()
SOURCE = "bench"
SIGNED_PATH = f"/webhooks/standard/{SOURCE}"
BARE_PATH = "/bench/noop"
ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "webhooks.json"
SCRIPT = Path(__file__).resolve().parent / "presigned.lua"
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
WARM_UP_S = 2
BROKER_WARM_UP_S = 30
"""The signed path's warm-up: its records also warm a fresh JVM broker, whose CPU per record
falls for its first minute under load (measured on a cold broker, the signed figure swung
by 2x from run to run)."""


# -- the load: pre-signed requests, driven by wrk ---------------------------------------------


def presign(path: Path, n: int, prefix: str) -> None:
    """Write ``n`` signed requests (distinct ids, timestamp now) for presigned.lua."""
    hook = Webhook(SECRET)
    now = datetime.now(UTC)
    stamp = str(int(now.timestamp()))
    with path.open("w") as out:
        for i in range(n):
            msg_id = f"msg_{prefix}{i:08d}"
            body = json.dumps(
                {"type": "company.updated", "data": {"id": f"c-{i % 997}", "name": "Bench"}}
            )
            out.write(f"{msg_id}\t{stamp}\t{hook.sign(msg_id, now, body)}\t{body}\n")


@dataclass
class Run:
    """One wrk run against one endpoint, and the CPU each process spent meanwhile."""

    endpoint: str
    wrk: dict[str, Any]
    wall_s: float
    wrk_cpu_s: float
    server_cpu_s: float
    event_loop_cpu_s: float
    broker_cpu_s: float | None

    @property
    def ok(self) -> int:
        """Answers wrk counted as 2xx (or 3xx, which the receiver never answers)."""
        return int(self.wrk["requests"]) - int(self.wrk["non_2xx_3xx"])

    def summary(self) -> dict[str, Any]:
        w = self.wrk
        seconds = w["duration_us"] / 1e6
        return {
            "req_per_s": round(self.ok / seconds, 1),
            "requests": w["requests"],
            "ok_2xx": self.ok,
            "non_2xx": w["non_2xx_3xx"],
            "socket_errors": {k: w[f"{k}_errors"] for k in ("connect", "read", "write")}
            | {"timeout": w["timeouts"]},
            "sent": w["sent"],
            "ids_reused": w["reused"],
            "latency_p50_s": w["latency_p50_us"] / 1e6,
            "latency_p90_s": w["latency_p90_us"] / 1e6,
            "latency_p99_s": w["latency_p99_us"] / 1e6,
            "latency_max_s": w["latency_max_us"] / 1e6,
            "seconds": round(seconds, 2),
            # share of one core over the run: 1.0 is a core kept busy all along
            "cpu_cores": {
                "wrk": round(self.wrk_cpu_s / self.wall_s, 3),
                "server_process": round(self.server_cpu_s / self.wall_s, 3),
                "server_event_loop_thread": round(self.event_loop_cpu_s / self.wall_s, 3),
                "broker": None
                if self.broker_cpu_s is None
                else round(self.broker_cpu_s / self.wall_s, 3),
            },
        }


_SUMMED = ("requests", "duration_us", "bytes", "sent", "reused", "non_2xx_3xx",
           "connect_errors", "read_errors", "write_errors", "timeouts")  # fmt: skip


def combine(runs: list[Run]) -> Run:
    """One endpoint's slices as one run: counts, time and CPU summed; latency percentiles the
    median of the slices' (they cannot be merged exactly), the maximum the largest."""
    first = runs[0]
    wrk: dict[str, Any] = {k: sum(int(r.wrk[k]) for r in runs) for k in _SUMMED}
    for q in ("p50", "p90", "p99"):
        wrk[f"latency_{q}_us"] = statistics.median(r.wrk[f"latency_{q}_us"] for r in runs)
    wrk["latency_max_us"] = max(r.wrk["latency_max_us"] for r in runs)
    brokers = [r.broker_cpu_s for r in runs]
    return Run(
        first.endpoint,
        wrk,
        sum(r.wall_s for r in runs),
        sum(r.wrk_cpu_s for r in runs),
        sum(r.server_cpu_s for r in runs),
        sum(r.event_loop_cpu_s for r in runs),
        None if None in brokers else sum(b for b in brokers if b is not None),
    )


def _cpu_s(pid: int | None, thread: int | None = None) -> float:
    """User + system CPU seconds of a process (all its threads), or of one of its threads."""
    if pid is None:
        return 0.0
    stat = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S


def measure(
    base: str,
    path: str,
    requests_file: Path,
    seconds: int,
    connections: int,
    server_pid: int,
    broker_pid: int | None,
) -> Run:
    """One wrk run on ``base + path``; the CPU of wrk, the server and the broker during its load.

    The load starts when wrk prints ``Running``, once its requests are loaded (line-buffered
    through ``stdbuf``), and ends when wrk exits; loading the requests is not counted.
    """
    argv = [
        "stdbuf", "-oL", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
        "--timeout", "10s", "-s", str(SCRIPT), base + path, "--", str(requests_file), path,
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    before: tuple[float, ...] | None = None
    for line in proc.stdout:
        lines.append(line)
        if before is None and line.startswith("Running"):
            before = (time.monotonic(), _cpu_s(proc.pid), _cpu_s(server_pid),
                      _cpu_s(server_pid, server_pid), _cpu_s(broker_pid))  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    ended = time.monotonic()
    proc.returncode = os.waitstatus_to_exitcode(status)
    results = [line for line in lines if line.startswith("wrk-result ")]
    if proc.returncode != 0 or before is None or not results:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{''.join(lines)}")
    started, wrk0, server0, loop0, broker0 = before
    return Run(
        path,
        json.loads(results[-1].removeprefix("wrk-result ")),
        ended - started,
        usage.ru_utime + usage.ru_stime - wrk0,
        _cpu_s(server_pid) - server0,
        _cpu_s(server_pid, server_pid) - loop0,
        None if broker_pid is None else _cpu_s(broker_pid) - broker0,
    )


# -- the server process -----------------------------------------------------------------------


def serve(bootstrap: str, topic: str, port: int) -> None:
    """The server process: the receiver with the bare endpoint, on uvicorn, until SIGTERM."""
    settings = Settings(_env_file=None).with_bootstrap(bootstrap)  # type: ignore[call-arg]
    settings = settings.model_copy(
        update={
            "webhooks": WebhookSettings(
                standard=StandardWebhookSettings(secrets={SOURCE: SecretStr(SECRET)})
            )
        }
    )
    instruments = Instruments(new_registry(process=False), "bench")
    app, landing = build_receiver(
        settings, instruments, topics={"standard": topic}, bare_endpoint=True
    )
    signal.signal(signal.SIGTERM, lambda *_: None)  # uvicorn re-raises it after shutdown
    try:
        receiver_server(app, "127.0.0.1", port).run()
    finally:
        landing.close()


@contextmanager
def _server(bootstrap: str, topic: str) -> Iterator[tuple[str, int]]:
    """The receiver in its own process, up and answering; its base URL and pid."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.webhooks.run", "--serve", bootstrap, topic, str(port)]
    server = subprocess.Popen(argv, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("bench server did not start")
            time.sleep(0.1)
        yield base, server.pid
    finally:
        server.terminate()
        server.wait(30)


@contextmanager
def _broker() -> Iterator[tuple[str, int | None, bool]]:
    """Bootstrap servers, the broker's pid (None: external) and whether it is Tansu."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external, None, Settings(_env_file=None).kafka.tansu  # type: ignore[call-arg]
        return
    from interlock.broker import embedded_broker

    with embedded_broker(Settings(_env_file=None)) as broker:  # type: ignore[call-arg]
        yield broker.bootstrap_servers, broker.pid, broker.kind == "tansu"


def _records(bootstrap: str, topic: str, tansu: bool) -> int:
    conf = {"bootstrap.servers": bootstrap}
    return true_end_offsets(conf, [(topic, 0)], tansu=tansu)[(topic, 0)]


def run(seconds: int, slices: int, connections: int, id_rate: int) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run `make bench-tools` (Debian package wrk)")
    topic = f"raw.crm.standard.bench.{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    warm_file = work / "warm.tsv"
    slice_s = max(1, seconds // slices)
    # every signed slice has requests of its own, so that no webhook id is sent twice
    slice_files = [work / f"requests-{i}.tsv" for i in range(slices)]
    try:
        presign(warm_file, 5_000, "warm")
        for i, file in enumerate(slice_files):
            presign(file, slice_s * id_rate, f"s{i}-")
        with _broker() as (bootstrap, broker_pid, tansu):
            admin = AdminClient({"bootstrap.servers": bootstrap})
            for f in admin.create_topics([NewTopic(topic, 1, 1)]).values():
                f.result(30)
            with _server(bootstrap, topic) as (base, pid):
                for path, warm_s in ((BARE_PATH, WARM_UP_S), (SIGNED_PATH, BROKER_WARM_UP_S)):
                    measure(base, path, warm_file, warm_s, connections, pid, broker_pid)
                before = _records(bootstrap, topic, tansu)
                bares: list[Run] = []
                signeds: list[Run] = []
                for requests_file in slice_files:
                    for endpoint, runs in ((BARE_PATH, bares), (SIGNED_PATH, signeds)):
                        runs.append(measure(base, endpoint, requests_file, slice_s, connections,
                                            pid, broker_pid))  # fmt: skip
                time.sleep(1.0)  # requests in flight when wrk stopped may still land
                landed = _records(bootstrap, topic, tansu) - before
            bare, signed = combine(bares), combine(signeds)
            wrk_version = _wrk_version()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    s, b = signed.summary(), bare.summary()
    return {
        "benchmark": "webhooks",
        "seconds": slice_s * slices,
        "slices": slices,
        "slice_ratios": [
            round(s_.ok / s_.wrk["duration_us"] / (b_.ok / b_.wrk["duration_us"]), 3)
            for s_, b_ in zip(signeds, bares, strict=True)
        ],
        "connections": connections,
        "generator": f"{wrk_version}, 1 thread, {connections} connections, pre-signed requests",
        "processes": "one receiver process (uvicorn); wrk; the broker",
        "warm_up_s": {"bare": WARM_UP_S, "signed": BROKER_WARM_UP_S},
        "signed": s,
        "bare": b,
        "ratio_signed_to_bare": round(s["req_per_s"] / b["req_per_s"], 3),
        "landed": {
            "records": landed,
            "ok_2xx": signed.ok,
            "sent": s["sent"],
            "every_2xx_landed": landed >= signed.ok,
            "nothing_extra": landed <= s["sent"],
        },
        "broker": ("external" if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") else "embedded")
        + (" Tansu" if tansu else " Apache Kafka"),
        "cpus": os.cpu_count(),
    }


def sweep(connections: Sequence[int], seconds: int) -> list[dict[str, Any]]:
    """The signed path alone at each number of connections: what a request costs the event
    loop and the broker when it is alone in its loop turn and its produce request, and when
    it shares them. Explores; writes no result."""
    topic = f"raw.crm.standard.sweep.{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    rows = []
    try:
        requests_file = work / "requests.tsv"
        presign(requests_file, 100_000, "sweep")
        with _broker() as (bootstrap, broker_pid, _tansu):
            admin = AdminClient({"bootstrap.servers": bootstrap})
            for f in admin.create_topics([NewTopic(topic, 1, 1)]).values():
                f.result(30)
            with _server(bootstrap, topic) as (base, pid):
                measure(base, SIGNED_PATH, requests_file, BROKER_WARM_UP_S, 64, pid, broker_pid)
                for n in connections:
                    r = measure(base, SIGNED_PATH, requests_file, seconds, n, pid, broker_pid)
                    rows.append(sweep_row(n, r))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def sweep_row(connections: int, r: Run) -> dict[str, Any]:
    """One line of :func:`sweep`: the rate, and the CPU per answered request."""
    return {
        "connections": connections,
        "req_per_s": round(r.ok / r.wall_s),
        "event_loop_us_per_request": round(1e6 * r.event_loop_cpu_s / r.ok),
        "broker_us_per_request": None
        if r.broker_cpu_s is None
        else round(1e6 * r.broker_cpu_s / r.ok),
        "latency_p50_ms": round(r.wrk["latency_p50_us"] / 1e3, 1),
    }


def _wrk_version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split(" [")[0] if first else "wrk"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=int, default=12, help="seconds per endpoint")
    parser.add_argument(
        "--slices", type=int, default=3, help="alternated bare/signed slices the time is cut in"
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--id-rate",
        type=int,
        default=16_000,
        help="pre-signed requests per second of --duration (more than the receiver answers, "
        "so that no webhook id is sent twice)",
    )
    parser.add_argument("--serve", nargs=3, metavar=("BOOTSTRAP", "TOPIC", "PORT"))
    parser.add_argument(
        "--sweep",
        metavar="N,N,...",
        help="instead: the signed path alone at each number of connections, --duration seconds "
        "each, as a table of CPU per request (event loop, broker); writes no result",
    )
    args = parser.parse_args(argv)
    if args.sweep:
        rows = sweep([int(n) for n in args.sweep.split(",")], args.duration)
        print("| connections | requests/s | event loop, µs per request "
              "| broker, µs per request | p50 |")  # fmt: skip
        print("|---:|---:|---:|---:|---:|")
        for r in rows:
            broker = r["broker_us_per_request"] or "-"
            print(f"| {r['connections']} | {r['req_per_s']:,} | {r['event_loop_us_per_request']:,}"
                  f" | {broker} | {r['latency_p50_ms']} ms |")  # fmt: skip
        return
    if not 1 <= args.slices <= args.duration:
        parser.error(f"--slices must be 1 to --duration ({args.duration}), not {args.slices}")
    if args.serve:
        serve(args.serve[0], args.serve[1], int(args.serve[2]))
        return
    result = run(args.duration, args.slices, args.connections, args.id_rate)
    write_result(RESULTS, result)
    s, b, landed = result["signed"], result["bare"], result["landed"]
    print("| endpoint | req/s | p50 | p99 | non-2xx | CPU: wrk / server / event loop / broker |")
    print("|---|---:|---:|---:|---:|---|")
    for name, r in (("bare (no-op)", b), ("signed ingest, acks=all", s)):
        cpu = r["cpu_cores"]
        shares = " / ".join(
            "-" if cpu[k] is None else f"{cpu[k]:.0%}"
            for k in ("wrk", "server_process", "server_event_loop_thread", "broker")
        )
        print(
            f"| {name} | {r['req_per_s']:,.0f} | {r['latency_p50_s'] * 1e3:.1f} ms "
            f"| {r['latency_p99_s'] * 1e3:.1f} ms | {r['non_2xx']} | {shares} |"
        )
    print(
        f"ratio signed/bare {result['ratio_signed_to_bare']}; records landed "
        f"{landed['records']:,} for {landed['ok_2xx']:,} 2xx ({landed['sent']:,} sent)"
    )


if __name__ == "__main__":
    main()
