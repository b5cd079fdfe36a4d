"""The test suite's own rules: no test waits for an effect by sleeping, none reads library source.

A ``time.sleep`` outside a loop waits a fixed time for something to happen: too short on a
loaded machine, too long everywhere else. Waiting is polling a condition with a deadline, so a
sleep may only be the pause inside such a loop. Reading a library's source text tests its
wording, not its behaviour.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

TESTS = Path(__file__).resolve().parent


def _is_sleep(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    fn = node.func
    return (isinstance(fn, ast.Attribute) and fn.attr == "sleep" and
            isinstance(fn.value, ast.Name) and fn.value.id == "time") or (
        isinstance(fn, ast.Name) and fn.id == "sleep"
    )  # fmt: skip


def _sleeps_outside_loops(tree: ast.AST) -> list[int]:
    """Lines of sleeps outside a loop. A fault held for a while (a broker kept stopped) is
    held until a condition shows it took effect, like any other wait."""
    found: list[int] = []

    def visit(node: ast.AST, in_loop: bool) -> None:
        for child in ast.iter_child_nodes(node):
            looping = in_loop or isinstance(child, ast.While | ast.For | ast.AsyncFor)
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                looping = False  # a helper's body runs wherever it is called
            if _is_sleep(child) and not in_loop:
                found.append(child.lineno)  # type: ignore[attr-defined]
            visit(child, looping)

    visit(tree, False)
    return found


def _test_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if p.name != Path(__file__).name)


@pytest.mark.parametrize("path", _test_files(), ids=lambda p: str(p.relative_to(TESTS)))
def test_no_sleep_waits_for_an_effect_and_no_library_source_is_read(path: Path) -> None:
    text = path.read_text()
    tree = ast.parse(text)
    assert _sleeps_outside_loops(tree) == [], f"{path}: sleep outside a polling loop"
    assert "getsource(" not in text, f"{path}: reads source text"


def test_the_rule_catches_a_bare_sleep_and_allows_a_polling_loop() -> None:
    bare = ast.parse("import time\ndef t():\n    go()\n    time.sleep(1.5)\n    check()\n")
    assert _sleeps_outside_loops(bare) == [4]
    polling = ast.parse("import time\ndef t():\n    while not done():\n        time.sleep(0.1)\n")
    assert _sleeps_outside_loops(polling) == []
