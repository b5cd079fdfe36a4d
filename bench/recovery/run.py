"""Worker restart on ``rocksdb://``: recovery from the stored changelog offsets vs from the start.

A worker on ``rocksdb://`` keeps its tables on disk, and each table partition records the
changelog offset it holds (``processors.state.ChangelogCheckpoints``), so a restarted worker's
recovery replays only the changelog after it. The baseline, in the same run on the same data,
is the same restart with those offsets removed from the databases: the worker then replays
every changelog from its start (what a worker without the offsets did).

One worker handles ``--quotes`` quotes over ``--accounts`` accounts (every command read back),
then stops cleanly. It is then restarted ``--restarts`` times with the offsets and as often
without them, alternately, on the same data directory and broker; each time the clock runs from
the process start until the worker is consuming (its ticks agent counted a tick, which happens
after recovery), with the worker's CPU seconds over the same span.

Results: ``bench/results/recovery.json`` and a Markdown table.

    python -m bench.recovery.run [--quotes N] [--accounts M] [--restarts R]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from confluent_kafka.admin import AdminClient  # noqa: E402

from bench.harness import kafka_bootstrap, write_result  # noqa: E402
from bench.quote_to_order.run import (  # noqa: E402
    PARTITIONS,
    _count,
    _create_topics,
    _faust_ready,
    _produce,
    _wait,
)
from interlock.broker import free_port  # noqa: E402
from interlock.resources import usage  # noqa: E402
from processors.topic_names import ProcessorTopics  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "recovery.json"
OFFSET_KEY = b"__faust\0offset__"
TABLES = (
    "accounts", "identity", "seen", "orders", "parked", "correlation", "writebacks", "lines",
)  # fmt: skip


class Worker:
    """One worker process on ``rocksdb://`` with a fixed data directory."""

    def __init__(self, bootstrap: str, topics: ProcessorTopics, app_id: str, data: Path) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.app_id = app_id
        self.data = data
        self.logs = ROOT / ".interlock" / "bench" / "recovery"  # kept after the run
        self.logs.mkdir(parents=True, exist_ok=True)
        self.starts = 0

    def start(self) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "INTERLOCK_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "INTERLOCK_PROCESSORS__APP_ID": self.app_id,
            "INTERLOCK_PROCESSORS__TOPIC_PREFIX": self.topics.prefix,
            "INTERLOCK_PROCESSORS__SESSION_TIMEOUT_S": "6",
            "INTERLOCK_PROCESSORS__TICK_INTERVAL_S": "0.2",
            "INTERLOCK_PROCESSORS__STORE": "rocksdb://",
            "INTERLOCK_PROCESSORS__DATA_DIR": str(self.data),
            "INTERLOCK_METRICS__PORT": str(port),
            "INTERLOCK_LOG_LEVEL": "WARNING",
        }
        self.starts += 1
        self.log = self.logs / f"worker-{self.app_id}-{self.starts}.log"
        with self.log.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "interlock.cli", "worker"],
                env=env,
                cwd=self.data.parent,
                stdout=log,
                stderr=log,
            )
        return proc, port

    def wait_ready(
        self, proc: subprocess.Popen[bytes], port: int, timeout: float, what: str
    ) -> None:
        """Until the worker consumes its ticks; a worker that exits or stays unready past
        ``timeout`` fails the run with the end of its log."""
        ticks = f"{self.topics.prefix}{self.app_id}-ticks"

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"{what}: the worker exited with {proc.returncode}; "
                                   f"{self.log_tail()}")  # fmt: skip
            return _faust_ready(port, ticks)

        try:
            _wait(ready, timeout, what)
        except TimeoutError:
            raise TimeoutError(f"{what} within {timeout:.0f} s; {self.log_tail()}") from None

    def log_tail(self, chars: int = 3000) -> str:
        text = self.log.read_text(errors="replace")
        return f"end of {self.log.relative_to(ROOT)}:\n{text[-chars:]}"

    def until_ready(self, timeout: float = 600) -> dict[str, float]:
        """Start, wait until it consumes, stop it cleanly: seconds and CPU seconds to ready."""
        started = time.monotonic()
        proc, port = self.start()
        try:
            self.wait_ready(proc, port, timeout, "worker ready after restart")
            ready_s = time.monotonic() - started
            used = usage(proc.pid)
            cpu_s = used.cpu_seconds if used is not None else float("nan")
        finally:
            stop(proc)
        return {"ready_s": round(ready_s, 3), "worker_cpu_s": round(cpu_s, 3)}


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        code = proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise RuntimeError("the worker did not stop within 60 s") from None
    if code != 0:
        raise RuntimeError(f"the worker exited with {code}")


def stored_offsets(data: Path, *, remove: bool = False) -> int:
    """How many table partitions hold a changelog offset (``remove``: delete them first)."""
    from rocksdict import Options, Rdict

    held = 0
    for path in sorted(p for t in TABLES for p in data.glob(f"**/{t}-*.db")):
        db = Rdict(str(path), Options(raw_mode=True))
        try:
            if remove and OFFSET_KEY in db:
                del db[OFFSET_KEY]
            held += db.get(OFFSET_KEY) is not None
        finally:
            db.close()
    return held


def run(bootstrap: str, quotes: int, accounts: int, restarts: int, tmp: Path) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    topics = ProcessorTopics(f"bench{tag}.")
    _create_topics(AdminClient({"bootstrap.servers": bootstrap}), topics)
    app_id = f"bench-recovery-{tag}"
    worker = Worker(bootstrap, topics, app_id, tmp / "data")
    changelogs = [f"{app_id}-{t}-changelog" for t in TABLES]

    proc, port = worker.start()
    try:
        worker.wait_ready(proc, port, 120, "worker ready")
        filled = time.monotonic()
        _produce(bootstrap, topics, quotes, accounts)

        def read_back() -> bool:
            return _count(bootstrap, f"{app_id}-orders-changelog") >= quotes

        _wait(read_back, 1200, "every command read back")
        fill_s = time.monotonic() - filled
    finally:
        stop(proc)
    records = sum(_count(bootstrap, c) for c in changelogs)

    runs: list[dict[str, Any]] = []
    for _ in range(restarts):
        held = stored_offsets(worker.data)
        runs.append(
            {"mode": "stored offsets", "partitions_with_offset": held, **worker.until_ready()}
        )
        stored_offsets(worker.data, remove=True)
        runs.append({"mode": "from the start", "partitions_with_offset": 0, **worker.until_ready()})

    def median(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["mode"] == mode)

    return {
        "quotes": quotes,
        "accounts": accounts,
        "partitions": PARTITIONS,
        "changelog_records": records,
        "fill_s": round(fill_s, 1),
        "restarts": restarts,
        "runs": runs,
        "ready_s": median("stored offsets", "ready_s"),
        "ready_s_from_start": median("from the start", "ready_s"),
        "worker_cpu_s": median("stored offsets", "worker_cpu_s"),
        "worker_cpu_s_from_start": median("from the start", "worker_cpu_s"),
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=50_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="interlock-bench-recovery-") as tmp,
        kafka_bootstrap() as bootstrap,
    ):
        result = run(bootstrap, args.quotes, args.accounts, args.restarts, Path(tmp))
    write_result(args.out, result)
    print(f"changelog records: {result['changelog_records']:,}")
    print("| restart | ready after | worker CPU |")
    print("|---|---:|---:|")
    for r in result["runs"]:
        print(f"| {r['mode']} | {r['ready_s']:.2f} s | {r['worker_cpu_s']:.2f} s |")


if __name__ == "__main__":
    main()
