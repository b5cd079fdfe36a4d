"""The dedup sweep on RocksDB: reading the time index up to what is due vs walking every id.

One RocksDB database (rocksdict, keys and values JSON-encoded as Faust stores them) holds a
partition's ``seen`` ids, marked over a span of time so that ``--due`` of them are past the TTL,
and, in its ``by_time`` column family, their time index entries as the worker's store keeps
them. Per size in ``--sizes``, best of
``--repeat``, each run finds the ids due:

- baseline, the walk (what ``memory://`` still does, and ``rocksdb://`` did): every key and
  value read and decoded, then ``expired_event_ids_by_partition``;
- the index: ``processors.rocksstore.due_entries``, which reads the index from its start and
  stops at the first entry not yet due.

Deleting what is due costs the same either way (it is linear in what expired) and is not timed.
Faust's table layer over the store is left out of both. Writes bench/results/sweep.json.

    python -m bench.sweep.run [--sizes 100000,1000000] [--due 0.01] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
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

from rocksdict import Options, Rdict, WriteBatch  # noqa: E402

from bench.harness import write_result  # noqa: E402
from processors.domain.housekeeping import expired_event_ids_by_partition  # noqa: E402
from processors.rocksstore import BY_TIME, by_time_key, due_entries  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "sweep.json"
OFFSET_KEY = b"__faust\0offset__"
TTL = 7 * 24 * 3600.0
NOW = 1_800_000_000.0


def _fill(seen: Rdict, size: int, due: float) -> None:
    """``size`` ids marked one after another; the first ``due`` share before NOW - TTL."""
    start = NOW - TTL - due * 3600.0
    step = 3600.0 / size  # marked over an hour: the due share falls before the cutoff
    by_time = seen.get_column_family_handle(BY_TIME)
    batch = WriteBatch(raw_mode=True)
    for i in range(size):
        at = start + i * step
        key = json.dumps(str(uuid.uuid4())).encode()
        batch.put(key, json.dumps([at, 0]).encode())
        batch.put(by_time_key(at, key), b"", by_time)
        if (i + 1) % 50_000 == 0:
            seen.write(batch)
            batch = WriteBatch(raw_mode=True)
    seen.write(batch)
    seen[OFFSET_KEY] = b"1"


def _walk(seen: Rdict) -> int:
    items = (
        (json.loads(k), json.loads(v)) for k, v in seen.items() if k != OFFSET_KEY
    )  # the decoded items Faust's table.items() yields
    return len(expired_event_ids_by_partition(items, NOW, TTL).get(0, []))


def _best(fn: Any, repeat: int) -> tuple[float, int]:
    best, found = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        found = fn()
        best = min(best, time.perf_counter() - started)
    return best, found


def _timed(seen: Rdict, size: int, due: float, repeat: int) -> tuple[float, int, float, int]:
    index = seen.create_column_family(BY_TIME, Options(raw_mode=True))
    _fill(seen, size, due)
    walk_s, walked = _best(lambda: _walk(seen), repeat)
    index_s, indexed = _best(lambda: len(due_entries(index, NOW - TTL, size)), repeat)
    return walk_s, walked, index_s, indexed  # the index's handle goes with this frame


def measure(size: int, due: float, repeat: int, tmp: Path) -> dict[str, Any]:
    seen = Rdict(str(tmp / f"seen-{size}"), Options(raw_mode=True))
    try:
        walk_s, walked, index_s, indexed = _timed(seen, size, due, repeat)
    finally:
        seen.close()
    if walked != indexed:
        raise RuntimeError(f"the walk found {walked} due ids, the index {indexed}")
    return {
        "ids": size,
        "due": walked,
        "walk_ms": round(walk_s * 1000, 2),
        "index_ms": round(index_s * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--due", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="interlock-bench-sweep-") as tmp:
        rows = [measure(size, args.due, args.repeat, Path(tmp)) for size in sizes]
    result = {
        "due_share": args.due,
        "repeat": args.repeat,
        "by_size": rows,
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    write_result(args.out, result)
    print("| ids | due | walk | index |")
    print("|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['ids']:,} | {r['due']:,} | {r['walk_ms']:,} ms | {r['index_ms']:,} ms |")


if __name__ == "__main__":
    main()
