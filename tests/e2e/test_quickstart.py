"""The README's first handoff, run literally on a fresh stack, and the CLI beside a running ``up``.

The commands come from README.md (its "First handoff by hand" section), so the front door cannot
drift from what works: ``interlock up`` in one shell, then the second shell's lines in order, as
a user would type them (with ``.venv/bin`` on the PATH and no settings at all).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import wait_ready

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## First handoff by hand"


def quickstart_blocks(readme: str) -> list[list[str]]:
    """The ``sh`` blocks of the quickstart section, as command lines without their comments."""
    assert SECTION in readme, f"README.md has no {SECTION!r} section"
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [
        [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]
        for block in blocks
    ]


def _user_env() -> dict[str, str]:
    """A shell with the CLI on its PATH and nothing configured (as after ``make run``)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("INTERLOCK_") and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "220"
    return env


def _shell(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", line], cwd=cwd, env=_user_env(), capture_output=True, text=True, timeout=120
    )


def _until(
    line: str, cwd: Path, done: Callable[[str], bool], timeout: float = 90.0
) -> subprocess.CompletedProcess[str]:
    """Run ``line`` until it exits 0 with an output ``done`` accepts (the stack is async)."""
    deadline = time.monotonic() + timeout
    while True:
        result = _shell(line, cwd)
        if result.returncode == 0 and done(result.stdout):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{line!r} never got there:\n{result.stdout}\n{result.stderr}")
        time.sleep(1.0)


def _journey_of(output: str) -> str:
    found = re.search(r"journey of (\S+)", output)
    assert found, output
    return found.group(1)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("quickstart")


@pytest.fixture(scope="module")
def stack(workdir: Path) -> Iterator[subprocess.Popen[str]]:
    """``interlock up`` as the README's first block says, in a fresh directory."""
    tmp_path = workdir
    (first,) = quickstart_blocks(README.read_text())[:1]
    assert first == ["interlock up"], first
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {first[0]}"],
        cwd=tmp_path,
        env=_user_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_ready(proc, 180)
    yield proc
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert not (tmp_path / ".interlock" / "stack.json").exists(), "up left its state file"


def test_the_readme_first_handoff_runs_literally_and_trace_takes_any_id(
    stack: subprocess.Popen[str], workdir: Path
) -> None:
    tmp_path = workdir
    second = quickstart_blocks(README.read_text())[1]
    outputs: dict[str, str] = {}
    wanted = re.search(r"order (SO-\d+)", README.read_text())
    assert wanted, "the README names the order the fake ERP gets"
    order = wanted.group(1)
    hops = ("webhook received", "QuoteAccepted", "OrderRequested", "OrderCreated")
    hops += ("DealStatusUpdateRequested",)
    for line in second:
        if line.startswith("curl"):
            outputs[line] = _until(line, tmp_path, lambda out: order in out).stdout
        elif line.startswith("interlock trace"):
            outputs[line] = _until(line, tmp_path, lambda out: all(h in out for h in hops)).stdout
        else:
            result = _shell(line, tmp_path)
            assert result.returncode == 0, f"{line}:\n{result.stdout}\n{result.stderr}"
            outputs[line] = result.stdout
    quote_out = next(out for line, out in outputs.items() if "send quote" in line)
    deal = re.search(r"sent deal (\d+) \(canonical quote ([0-9a-f-]{36})\)", quote_out)
    assert deal, quote_out
    assert f"deal {deal.group(1)}" in README.read_text()
    webhook_ids = re.findall(r"webhook (\S+) → 200", quote_out)
    assert webhook_ids, quote_out

    trace_out = next(out for line, out in outputs.items() if line.startswith("interlock trace"))
    journey = _journey_of(trace_out)
    assert journey == deal.group(2)
    order_number = re.search(r"(SO-\d{6})", next(o for k, o in outputs.items() if "curl" in k))
    order_id = re.search(r"OrderRequested.*?order_id=([0-9a-f-]{36})", trace_out)
    assert order_number
    assert order_id, trace_out
    for any_id in (*webhook_ids, deal.group(1), journey, order_number.group(1), order_id.group(1)):
        result = _shell(f"interlock trace {any_id}", tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert _journey_of(result.stdout) == journey, any_id
        assert "webhook received" in result.stdout, any_id
    unknown = _shell("interlock trace no-such-id", tmp_path)
    assert unknown.returncode == 1
    assert "nothing found" in unknown.stdout

    # the same example again: accepted, and still one order
    again = _shell("interlock send quote --example", tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    orders = _until(
        "curl -s http://127.0.0.1:8081/orders", tmp_path, lambda out: order_number.group(1) in out
    )
    assert orders.stdout.count('"order_number"') == 1


def test_other_commands_find_the_running_stack_with_no_settings(
    stack: subprocess.Popen[str], workdir: Path
) -> None:
    tmp_path = workdir
    topics = _shell("interlock topics list", tmp_path)
    assert topics.returncode == 0, topics.stdout + topics.stderr
    assert "using the stack of `interlock up`" in topics.stderr
    assert "drift" not in topics.stdout
    dlq = _shell("interlock dlq list", tmp_path)
    assert dlq.returncode == 0, dlq.stdout + dlq.stderr
    assert "using the stack of `interlock up`" in dlq.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    lost = _shell("interlock topics list", elsewhere)
    assert lost.returncode == 2
    assert "No Kafka configured" in lost.stderr
