"""What every ``interlock`` command shares: its settings, the Kafka it needs, a stop on signals.

The command modules of every layer (``interlock.cli``, ``connectors.*.cli``, ``ops.*.cli``)
use these instead of writing their own.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import NoReturn

import typer

from interlock.logs import configure_logging
from interlock.settings import Settings, load_settings

__all__ = [
    "command_settings",
    "exit_refused",
    "ignore_signals_after_uvicorn",
    "require_kafka",
    "stack_settings",
    "stop_on_signals",
]

NO_KAFKA = (
    "No Kafka configured. Set INTERLOCK_KAFKA__BOOTSTRAP_SERVERS (or KAFKA_BOOTSTRAP_SERVERS), "
    "start one with `interlock broker`, or run `interlock up` (commands run beside it, in its "
    "directory, use it)."
)


def command_settings() -> Settings:
    """The settings from the environment, with logging configured at their level."""
    settings = load_settings()
    configure_logging(settings.log_level)
    return settings


def stack_settings() -> Settings:
    """Settings for a command a user runs beside ``interlock up``: with no Kafka configured,
    the running stack's (from its state file, said in one line on stderr)."""
    from interlock.stackfile import attach

    return attach(command_settings())


def require_kafka(settings: Settings) -> Settings:
    """``settings`` when they name a Kafka; otherwise say how to get one and exit 2."""
    if settings.embedded:
        typer.echo(NO_KAFKA, err=True)
        raise typer.Exit(2)
    return settings


def stop_on_signals(stop: threading.Event | None = None) -> threading.Event:
    """An event that SIGINT and SIGTERM set (the loop of a service ends on it)."""
    event = stop or threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        event.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    return event


def ignore_signals_after_uvicorn() -> None:
    """Let a command that serves with uvicorn end with exit 0 on SIGINT or SIGTERM.

    uvicorn installs its own handlers while it serves and re-raises the signal it caught once it
    has shut down; with these no-op handlers in place, that re-raise is harmless.
    """
    signal.signal(signal.SIGINT, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: None)


def exit_refused(message: str) -> NoReturn:
    """Say ``message`` on stderr and exit 2 at once: the broker refused our access.

    The interpreter is not torn down: the client whose error callback raised is still alive, and
    destroying librdkafka clients at interpreter shutdown after such a callback crashed the
    process (SIGSEGV instead of exit 2) under load.
    """
    typer.echo(message, err=True)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(2)
