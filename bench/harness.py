"""What every benchmark does around its measurement: find a broker, write its JSON result."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["broker_label", "kafka_bootstrap", "write_result"]


@contextmanager
def kafka_bootstrap() -> Iterator[str]:
    """``KAFKA_BOOTSTRAP_SERVERS`` when it is set, else an embedded broker's, up for the block."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    from interlock.broker import embedded_broker
    from interlock.settings import Settings

    with embedded_broker(Settings(_env_file=None)) as broker:
        yield broker.bootstrap_servers


def broker_label() -> str:
    """The broker the benchmarks run on: ``external``, or the embedded one that is chosen."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return "external"
    from interlock.broker import choose_embedded
    from interlock.settings import Settings

    kind = choose_embedded(Settings(_env_file=None)).kind
    return "embedded " + ("Tansu" if kind == "tansu" else "Apache Kafka")


def write_result(path: Path, result: Any) -> None:
    """Write a benchmark's result as indented JSON, creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
