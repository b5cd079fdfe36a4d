"""The in-process benchmark's instruction counts: repeatable, and shown beside the times."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.inprocess.run import ROOT, count_instructions
from bench.sections.worker import inprocess_section


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_the_same_tree_and_input_count_the_same_instructions_for_the_quotes_alone() -> None:
    with ThreadPoolExecutor(2) as pool:  # at once: mostly valgrind starting Python
        (one, records), (two, _) = pool.map(
            lambda repeats: count_instructions(ROOT, quotes=20, accounts=5, repeats=repeats),
            (1, 2),
        )
    assert records == 22  # the quotes and their redeliveries
    # per record, one repeat or two count alike: nothing outside the measured feeds is counted
    # (start-up and imports alone are many times a repeat's work); the premise of comparing
    # counts across trees
    assert abs(one - two) <= one * 0.02
    assert one > 100_000  # each record runs the whole Pipeline: far from free


@pytest.mark.unit
def test_the_section_shows_instructions_beside_the_times_or_why_not() -> None:
    timed = {"baseline_rev": "abc1234", "baseline_us_per_quote": 140.0,
             "new_us_per_quote": 70.0, "quotes": 300, "accounts": 50, "duplicates": 30,
             "repeats": 5, "rounds": 5}  # fmt: skip
    counted = inprocess_section(
        {
            **timed,
            "instructions_per_quote": {
                "baseline": 1_500_000,
                "new": 1_200_000,
                "quotes": 300,
                "accounts": 50,
                "ratio": 0.8,
            },
        }
    )
    row = next(r for r in counted.rows if r.measure.startswith("instructions per quote"))
    assert (row.value, row.baseline, round(row.ratio or 0, 2)) == (1_200_000, 1_500_000, 0.8)
    assert any("callgrind" in note for note in counted.notes)
    skipped = inprocess_section({**timed, "instructions_per_quote": {"skipped": "no valgrind"}})
    assert not any(r.measure.startswith("instructions") for r in skipped.rows)
    assert any("not counted: no valgrind" in note for note in skipped.notes)
