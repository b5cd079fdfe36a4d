"""RESULTS.md from sample benchmark JSON: ratios, target verdicts with shortfalls, and plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.plots import plot_all
from bench.report import build_sections, machine_line, render_results, write_results
from bench.sections.targets import CDC_TARGET, HANDOFF_TARGET

pytestmark = pytest.mark.unit

MACHINE = {
    "cpu": "Test CPU 3000",
    "cores": 2,
    "memory_gib": 23.0,
    "python": "3.11.7",
    "os": "Linux-test",
    "date": "2026-01-02 03:04 UTC",
    "load_before": [1.5, 1.0, 0.5],
    "shared": True,
}


def _serde(read_ratio: float) -> dict[str, Any]:
    def row(case: str, eps: int) -> dict[str, Any]:
        return {"case": case, "events_per_s": eps, "us_per_event": 1e6 / eps, "ratio_vs_raw": 0}

    return {
        "contract": "order v1", "record_bytes": 557, "events": 10, "repeat": 1,
        "results": [
            row("raw fastavro write (dict)", 10_000), row("encode single-object", 30_000),
            row("raw fastavro read (dict)", 10_000),
            row("decode single-object", int(10_000 * read_ratio)),
        ],
    }  # fmt: skip


PIPELINE = {
    "benchmark": "pipeline", "duration_s": 10, "runs": [
        {"workers": w, "offered_per_s": rate, "sent_per_s": rate * 0.98,
         "worker_consumed_per_s": rate * 1.2 * w if rate == 1000 else 900.0 * w,
         "consumed_per_s": rate * 3, "latency": {"quote_to_order": {"p50": 0.1, "p99": p99}},
         "latency_all": {"p50": 0.1, "p99": p99}, "lag_end": 5, "lag_grew": rate > 1000}
        for w in (1, 2) for rate, p99 in ((1000, 0.4), (2000, 0.9))
    ],
}  # fmt: skip


def _write(d: Path, name: str, doc: dict[str, Any]) -> None:
    (d / f"{name}.json").write_text(json.dumps(doc))


@pytest.fixture
def results(tmp_path: Path) -> Path:
    _write(tmp_path, "serde", _serde(read_ratio=0.5))
    _write(
        tmp_path,
        "cdc",
        {
            "rows": 100,
            "snapshot_rows_per_s": 60_000.0,
            "baseline_events_per_s": 90_000.0,
            "mapping_events_per_s": 36_000.0,
        },
    )
    _write(
        tmp_path,
        "webhooks",
        {
            "seconds": 1,
            "signed": _ingest_run(300.0),
            "bare": _ingest_run(200.0),
            "landed": {"records": 300, "ok_2xx": 300, "sent": 302, "every_2xx_landed": True},
        },
    )
    _write(
        tmp_path,
        "quote_to_order",
        {
            "faust_worker": {"events_per_s": 3_000, "latency_p99_s": 5.0},
            "plain_confluent_loop": {"events_per_s": 6_000, "latency_p99_s": 3.0},
        },
    )
    _write(tmp_path, "quix", {"status": "unsupported", "reason": "KeyError: 'retention.ms'"})
    _write(tmp_path, "pipeline", PIPELINE)
    return tmp_path  # fmt: skip


def _ingest_run(req_per_s: float) -> dict[str, Any]:
    """One endpoint's figures in bench.webhooks' result."""
    return {
        "req_per_s": req_per_s,
        "non_2xx": 0,
        "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0},
        "ids_reused": 0,
        "latency_p50_s": 0.01,
        "latency_p99_s": 0.05,
        "cpu_cores": {"wrk": 0.2, "server_process": 1.2, "server_event_loop_thread": 0.95,
                      "broker": None},
    }  # fmt: skip


def test_the_webhook_section_names_its_slices_and_their_ratios(tmp_path: Path) -> None:
    doc = {
        "seconds": 12,
        "slices": 3,
        "slice_ratios": [0.41, 0.52, 0.47],
        "signed": _ingest_run(3_000.0),
        "bare": _ingest_run(6_500.0),
        "landed": {"records": 9, "ok_2xx": 9, "sent": 9, "every_2xx_landed": True},
    }
    md = _rendered(tmp_path, "webhooks", doc)
    note = "12 s per endpoint in 3 alternated slices (signed/bare by slice: 0.41x, 0.52x, 0.47x;"
    assert note in md
    assert "| 0.46x |" in _line(md, "| signed Standard-Webhooks ingest")


def _rendered(d: Path, name: str, doc: dict[str, Any]) -> str:
    """RESULTS.md made from one benchmark's result ``doc``."""
    _write(d, name, doc)
    return render_results(build_sections(d), MACHINE)


def _line(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(start))


def test_rows_show_figure_baseline_ratio_and_verdict(results: Path) -> None:
    md = render_results(build_sections(results), MACHINE)
    encode = _line(md, "| encode single-object")
    assert "30,000 events/s" in encode
    assert "raw fastavro write (dict)" in encode
    assert "3.00x" in encode
    assert "| met |" in encode
    decode = _line(md, "| decode single-object")
    assert "0.50x" in decode
    assert "**missed** by 0.2x (29% short)" in decode
    webhooks = _line(md, "| signed Standard-Webhooks ingest")
    assert "1.50x" in webhooks
    assert webhooks.endswith("| ≥ 0.7x the bare endpoint | met |")
    one_process = _line(md, "| signed ingest, acks=all, one receiver process")
    assert "**missed** by 1,700 req/s (85% short)" in one_process


def test_missed_value_target_shows_the_shortfall(results: Path) -> None:
    md = render_results(build_sections(results), MACHINE)
    cdc = _line(md, "| CDC mapping stage")
    assert "0.40x" in cdc
    assert "≥ 40,000 events/s" in cdc
    assert "**missed** by 4,000 events/s (10% short)" in cdc
    faust = _line(md, "| faust worker |")
    assert "**missed** by 0.3x (38% short)" in faust
    assert "0.50x" in faust


def test_quote_to_order_shows_what_a_worker_sustains_and_its_scaling(tmp_path: Path) -> None:
    md = _rendered(
        tmp_path,
        "quote_to_order",
        {
            "faust_worker": {"events_per_s": 4_000, "events_per_s_incl_read_back": 3_000},
            "faust_two_workers": {"events_per_s": 4_400, "events_per_s_incl_read_back": 4_500},
            "plain_confluent_loop": {"events_per_s": 6_000},
        },
    )
    sustained = _line(md, "| faust worker, incl. read-back |")
    assert "3,000 events/s" in sustained
    assert "**missed** by 0.3x (38% short)" in sustained
    assert "1.10x" in _line(md, "| faust two workers vs 1 |")
    scaling = _line(md, "| faust two workers vs 1, incl. read-back |")
    assert "1.50x" in scaling
    # the issue withdrew 2 workers ≥ 1.6x one: the ratio is shown, with no target or verdict
    assert scaling.endswith("| - | - |")
    assert "withdrew 2 workers ≥ 1.6x one" in md


def test_quote_to_order_compares_read_back_with_read_back(tmp_path: Path) -> None:
    md = _rendered(
        tmp_path,
        "quote_to_order",
        {
            "faust_worker": {"events_per_s": 4_000, "events_per_s_incl_read_back": 3_000},
            "plain_confluent_loop": {"events_per_s": 8_000, "events_per_s_incl_read_back": 5_000},
        },
    )
    burst = _line(md, "| faust worker |")
    assert "| plain confluent-kafka loop, same Pipeline | 8,000 events/s | 0.50x |" in burst
    sustained = _line(md, "| faust worker, incl. read-back |")
    assert (
        "plain confluent-kafka loop, same Pipeline, incl. read-back | 5,000 events/s" in sustained
    )
    assert "0.60x" in sustained
    assert "**missed** by 0.2x (25% short)" in sustained
    assert "5,000 events/s" in _line(md, "| plain confluent-kafka loop, same Pipeline, incl.")
    assert "leaves the read-back out" in md


def test_targets_are_strict_in_their_direction() -> None:
    assert CDC_TARGET.verdict(40_000, None) == "met"
    assert HANDOFF_TARGET.verdict(0.25, None).startswith("**missed** by 0")
    assert HANDOFF_TARGET.verdict(0.249, None) == "met"
    assert CDC_TARGET.verdict(None, None) == "not measured"


def test_pipeline_latency_target_applies_at_1000_per_s_and_scaling_is_shown_untargeted(
    results: Path,
) -> None:
    md = render_results(build_sections(results), MACHINE)
    p99 = _line(md, "| 1 worker @ 1,000/s: handoff p99")
    assert "400 ms" in p99
    assert "**missed** by 0.15 s (60% over)" in p99
    assert _line(md, "| 1 worker @ 2,000/s: handoff p99").endswith("| - | - |")
    scaling = _line(md, "| 2 workers vs 1")
    assert "2.00x" in scaling
    assert scaling.endswith("| - | - |")  # the scaling target is withdrawn
    assert "withdrew 2 workers ≥ 1.6x one" in md


def test_machine_line_failures_and_unsupported_runs_are_reported(results: Path) -> None:
    runs = {
        "webhooks": {"status": "timeout", "error": "still waiting"},
        "cdc": {"status": "failed", "returncode": 3, "error": "boom\nKeyError: 'x'"},
    }
    md = render_results(build_sections(results, runs), MACHINE)
    assert "Test CPU 3000, 2 cores, 23.0 GiB, Python 3.11.7" in md
    assert "**Shared machine**: load average 1.50, 1.00, 0.50" in md
    assert "**TIMED OUT: still waiting**" in md
    assert "**FAILED (exit 3): boom / KeyError: 'x'**" in md
    assert "| CDC mapping stage" not in md  # no stale figures for a failed run
    assert "not run: KeyError: 'retention.ms'" in md
    assert "### pipeline" not in md
    assert "Full pipeline" in md


def test_machine_line_says_how_many_cores_the_host_took() -> None:
    line = machine_line({**MACHINE, "stolen_cores": 0.62})
    assert "**The host took cores from this machine**: 0.62 of its 2 cores stolen" in line
    assert "took cores" not in machine_line({**MACHINE, "stolen_cores": 0.01})
    assert "took cores" not in machine_line(MACHINE)  # results from before it was recorded


def test_write_results_renders_markdown_and_png_plots(results: Path) -> None:
    path = write_results(results, machine=MACHINE)
    assert path.read_text().startswith("# Benchmark results")
    for name in ("pipeline_throughput", "pipeline_latency", "benchmarks_vs_baseline"):
        png = results / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_plots_skip_what_has_no_data(tmp_path: Path) -> None:
    assert plot_all(tmp_path, build_sections(tmp_path)) == []


BROKER = {
    "rounds": 300,
    "by_size": [
        {"batches": 1000, "records": 1000, "broker_cpu_us_per_round": 800.0,
         "wall_us_per_round": 5000.0, "broker_cpu_us_per_list_offsets": 1300.0},
        {"batches": 16000, "records": 16000, "broker_cpu_us_per_round": 12000.0,
         "wall_us_per_round": 17000.0, "broker_cpu_us_per_list_offsets": 11000.0},
    ],
    "batched": {"batches": 160, "records": 16000, "records_per_batch": 100,
                "broker_cpu_us_per_round": 600.0, "wall_us_per_round": 6000.0,
                "broker_cpu_us_per_list_offsets": 1000.0},
    "broker_cpu_us_per_stored_batch": 0.75,
}  # fmt: skip


def test_broker_section_compares_each_size_with_the_smallest_and_batching(
    tmp_path: Path,
) -> None:
    md = _rendered(tmp_path, "broker", BROKER)
    big = _line(md, "| produce 1 + fetch it, 16,000 single-record batches stored")
    assert "12,000 µs" in big
    assert "15.00x" in big
    batched = _line(md, "| the same, 16,000 records stored as 160 batches of 100")
    assert "0.05x" in batched
    assert "0.75 µs of broker CPU to every fetch" in md
    assert "8.46x" in _line(md, "| ListOffsets (latest), 16,000 batches stored")


RECOVERY = {
    "quotes": 50000, "accounts": 1000, "partitions": 6, "changelog_records": 153000,
    "restarts": 2, "ready_s": 6.0, "ready_s_from_start": 18.0,
    "worker_cpu_s": 1.5, "worker_cpu_s_from_start": 13.5,
}  # fmt: skip


def test_recovery_section_compares_stored_offsets_with_a_replay_from_the_start(
    tmp_path: Path,
) -> None:
    md = _rendered(tmp_path, "recovery", RECOVERY)
    ready = _line(md, "| restart until consuming")
    assert "6.00 s" in ready
    assert "18.00 s" in ready
    assert "0.33x" in ready
    assert "0.11x" in _line(md, "| worker CPU until consuming")
    assert "153,000 changelog records" in md


SWEEP = {
    "due_share": 0.01, "repeat": 5,
    "by_size": [{"ids": 1000000, "due": 10000, "walk_ms": 3000.0, "index_ms": 15.0}],
}  # fmt: skip


def test_sweep_section_compares_the_index_with_the_walk(tmp_path: Path) -> None:
    md = _rendered(tmp_path, "sweep", SWEEP)
    row = _line(md, "| 1,000,000 ids, 10,000 due: find them")
    assert "15.00 ms" in row
    assert "3,000 ms" in row
    assert "0.0050x" in row


def test_quote_to_order_holds_rocksdb_to_memory(tmp_path: Path) -> None:
    md = _rendered(
        tmp_path,
        "quote_to_order",
        {
            "store": "rocksdb://",
            "faust_worker": {"events_per_s": 900.0},
            "faust_worker_other_store": {"events_per_s": 1000.0, "store": "memory://"},
            "plain_confluent_loop": {"events_per_s": 1000.0},
        },
    )
    assert "| 0.90x | rocksdb:// ≥ 0.85x memory:// | met |" in _line(
        md, "| faust worker on rocksdb:// vs memory:// |"
    )
    assert "| 0.90x | ≥ 0.8x the plain loop | met |" in _line(md, "| faust worker |")


def test_quote_to_order_tells_the_warm_up_and_rates_no_row_on_it(tmp_path: Path) -> None:
    md = _rendered(
        tmp_path,
        "quote_to_order",
        {
            "store": "rocksdb://",
            "faust_worker": {"events_per_s": 900.0},
            "warm_up": {"quotes": 20_000, "store": "rocksdb://", "events_per_s": 450.0},
            "plain_confluent_loop": {"events_per_s": 1000.0},
        },
    )
    assert "| warm up |" not in md
    assert "450.0" not in "".join(line for line in md.splitlines() if line.startswith("|"))
    assert "warm-up: a 20000-quote burst on a throw-away worker on `rocksdb://`" in md
    assert "(its own rate: 450.0 events/s)" in md
