"""The state file of a running ``interlock up``: written private, read only while ``up`` lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from interlock.settings import load_settings
from interlock.stackfile import StackState, attach, read_stack, remove_stack, write_stack

pytestmark = pytest.mark.unit


def _state(pid: int) -> StackState:
    return StackState(
        pid=pid,
        bootstrap_servers="127.0.0.1:39092",
        broker_kind="kafka",
        partitions=1,
        webhooks_url="http://127.0.0.1:8080",
        standard_source="acme",
        standard_secret="whsec_x",
    )


def test_a_running_stack_is_used_when_nothing_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "stack.json"
    monkeypatch.setenv("INTERLOCK_STACK_FILE", str(path))
    monkeypatch.delenv("INTERLOCK_KAFKA__BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    said: list[str] = []
    settings = load_settings()
    assert attach(settings, said.append) is settings  # no file: unchanged, silent
    assert said == []

    write_stack(_state(os.getpid()))
    assert path.stat().st_mode & 0o777 == 0o600  # it holds the run's webhook secret
    attached = attach(settings, said.append)
    assert attached.kafka.bootstrap_servers == "127.0.0.1:39092"
    assert attached.topics.partitions == 1
    assert len(said) == 1
    assert "127.0.0.1:39092" in said[0]

    configured = load_settings(kafka={"bootstrap_servers": "elsewhere:9092"})
    assert attach(configured, said.append) is configured  # what is configured wins

    remove_stack(os.getpid() + 1)  # not ours: kept
    assert path.exists()
    remove_stack(os.getpid())
    assert not path.exists()


def test_the_file_of_a_stack_that_is_gone_is_ignored(tmp_path: Path) -> None:
    never = int(Path("/proc/sys/kernel/pid_max").read_text())  # no process has this pid
    path = tmp_path / "stack.json"
    write_stack(_state(never), path)
    assert read_stack(path) is None
    path.write_text("{not json")
    assert read_stack(path) is None
