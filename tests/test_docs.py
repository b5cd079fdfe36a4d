"""The front door stays short and the docs carry no measured figure; generated pages are fresh.

A figure that a benchmark or a run produces (a rate, a latency, a share of a core, a memory
size, a speed-up) goes stale with the next run on the next machine, so it lives only in
``bench/results/RESULTS.md``, which ``make bench`` writes. The rule, concretely: in prose (not
in fenced code blocks, inline code spans, HTML comments or link targets), a number directly
followed by one of these units is a measured figure:

- a rate: ``/s`` with or without a word before it (``4,103 quotes/s``, ``500/s``);
- a time: ``ns``, ``µs``, ``us``, ``ms``, ``s``, ``sec``, ``second(s)``, ``min``, ``minute(s)``;
- a share: ``%``;
- a size: ``B``, ``kB``, ``KB``, ``KiB``, ``MB``, ``MiB``, ``GB``, ``GiB``;
- a ratio: ``x`` or the multiplication sign (``3.7x``).

Version numbers, ports, counts, HTTP status codes (``5xx``) and dates carry none of these
units and pass. A setting's default, a threshold or a command's argument is written as code
(`` `INTERLOCK_RETRY__DELAYS` = `[1, 10, 60]` ``, `` `for: 10m` ``, `` `--for 60` ``), which
the rule skips.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 200

_NUMBER = r"(?<![\w.,/-])\d+(?:[.,]\d+)*(?:\.\d+)?\s?k?"
_UNITS = (
    r"(?:[A-Za-z]+\s?)?/s(?![A-Za-z])"  # rates: 4,103 quotes/s, 500/s, 1.2k events/s
    r"|(?:ns|µs|us|ms|s|sec|seconds?|min|minutes?)(?![\w-])"  # times
    r"|%"  # shares
    r"|(?:B|kB|KB|KiB|MB|MiB|GB|GiB)(?![\w-])"  # sizes
    "|[x\u00d7](?![\\w-])"  # ratios: 3.7x, 0.28 with a multiplication sign
)
FIGURE = re.compile(rf"{_NUMBER}\s?(?:{_UNITS})")
_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+).+?\1")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_LINK_TARGET = re.compile(r"\]\([^)]*\)")


def figures(text: str) -> list[tuple[int, str]]:
    """(line number, figure) for every measured figure in the prose of a Markdown text."""
    text = _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    found: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        prose = _LINK_TARGET.sub("]()", _CODE_SPAN.sub("``", line))
        found += [(number, m.group(0).strip()) for m in FIGURE.finditer(prose)]
    return found


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_readme_is_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_readme_links_resolve() -> None:
    """mkdocs checks the links between docs pages; the README's are checked here."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    missing = [t for t in targets if "://" not in t and not (ROOT / t).exists()]
    assert targets
    assert not missing, f"README.md links to missing files: {missing}"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_measured_figures(page: Path) -> None:
    found = figures(page.read_text(encoding="utf-8"))
    where = ", ".join(f"line {n}: {f!r}" for n, f in found)
    assert not found, (
        f"{page.relative_to(ROOT)} quotes measured figures ({where}): they belong in "
        "bench/results/RESULTS.md (make bench); write a setting or threshold as code"
    )


@pytest.mark.parametrize(
    ("prose", "expected"),
    [
        ("the worker sustained 4,103 quotes/s beside 9,588/s", ["4,103 quotes/s", "9,588/s"]),
        ("p99 81 ms, then 4.6 s behind; about 94 µs per quote", ["81 ms", "4.6 s", "94 µs"]),
        (
            "42\u201343% of a core, 182 \u2192 185 MiB, 3.7x and 0.28\u00d7",
            ["43%", "185 MiB", "3.7x", "0.28\u00d7"],
        ),
        ("restarts in 13 seconds and 1.5k events/s", ["13 seconds", "1.5k events/s"]),
        ("Apache Kafka 4.3.1 on port 9464, Java 17, HTTP 503, 5xx, uuid5, p99", []),
        ("`INTERLOCK_KAFKA__LINGER_MS` (`25`), `--for 60`, `for: 10m`", []),
        ("```\ninterlock up --simulate 500 --for 120\n```", []),
        ("<!-- 20 ms -->, [results](../bench/500ms.md), 11 invariants, 2 cores", []),
    ],
)
def test_figure_rule(prose: str, expected: list[str]) -> None:
    assert [f for _, f in figures(prose)] == expected


def test_figure_rule_catches_the_old_notebook() -> None:
    """The README and performance notes as they were before the docs site hold many figures."""
    for path in ("README.md", "docs/performance.md"):
        shown = subprocess.run(
            ["git", "show", f"d8e02f5:{path}"], cwd=ROOT, capture_output=True, text=True
        )
        if shown.returncode != 0:  # a shallow clone without that commit
            pytest.skip("the old README is not in this clone's history")
        assert len(figures(shown.stdout)) > 50, path


def _generator() -> ModuleType:
    path = ROOT / "scripts" / "gen_reference.py"
    spec = importlib.util.spec_from_file_location("gen_reference", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_lists_every_command() -> None:
    import typer.main

    from interlock.cli import app

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    runnable = [
        " ".join(path)
        for path, command in _generator()._commands(typer.main.get_command(app), ["interlock"])
        if len(path) > 1
        and (not getattr(command, "commands", None) or command.invoke_without_command)
    ]
    missing = [name for name in runnable if f"| `{name}` |" not in table]
    assert not missing, f"README.md's commands table lacks {missing}"


def test_generated_reference_is_fresh() -> None:
    stale = _generator().stale_pages()
    assert not stale, f"run scripts/gen_reference.py: stale pages in docs/: {stale}"


def test_the_lineage_section_names_every_decision_the_worker_records() -> None:
    from typing import get_args

    from processors.audit import Decision

    lineage = (ROOT / "docs" / "concepts" / "idempotency.md").read_text()
    missing = [d for d in get_args(Decision) if f"`{d}`" not in lineage]
    assert not missing, f"docs/concepts/idempotency.md does not name {missing}"
