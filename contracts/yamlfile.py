"""Reading the YAML files that hold our configuration, with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from contracts.errors import ConfigError

__all__ = ["read_yaml"]


def read_yaml(path: Path, what: str) -> Any:
    """The parsed document at ``path``.

    Raises:
        ConfigError: ``<path>: cannot read <what>: ...`` when the file is missing or not YAML.
    """
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc}") from exc
