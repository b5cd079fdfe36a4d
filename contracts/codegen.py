"""The one place where generated Python source becomes functions, and where that source is kept.

Several hot paths are written as Python source once, at start-up, from data that is fixed by
then: the Avro codecs (``contracts.codec``), the CDC stage's per-mapping payload builders and
writers (``connectors.cdc.mapper``, ``connectors.cdc.fastpath``) and the ``ChangeEvent``
factory (``connectors.cdc.envelope``). Each generator hands its source to ``compile_generated``,
which

- compiles it under a file name that names it (``<generated cdc-writer:erp-customers>``), and
  gives that source to ``linecache``, so a traceback or a debugger shows the generated line;
- keeps the source under its name, so ``interlock contracts codegen --show NAME`` prints it.

Names are ``kind:subject``. The registry keeps the latest source per name: a process compiles
a bounded set of them (one per schema, mapping or dataclass), so it does not grow while the
process runs. Nothing else in Interlock calls ``exec`` or ``compile``.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GeneratedSource",
    "compile_generated",
    "generated_function",
    "generated_source",
    "generated_sources",
]


@dataclass(frozen=True, slots=True)
class GeneratedSource:
    """The source of one generated module (one or more functions), as it was compiled."""

    name: str
    source: str

    @property
    def kind(self) -> str:
        """What generated it: the part of the name before the first colon."""
        return self.name.partition(":")[0]

    @property
    def filename(self) -> str:
        """The file name its code objects carry (shown in tracebacks)."""
        return f"<generated {self.name}>"


_SOURCES: dict[str, GeneratedSource] = {}


def compile_generated(name: str, source: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Run ``source`` in ``namespace`` (its globals) and keep it under ``name``.

    Returns:
        ``namespace``, now holding what the source defines.

    Raises:
        SyntaxError: the generator wrote invalid source (a bug in the generator).
    """
    generated = GeneratedSource(name, source)
    code = compile(source, generated.filename, "exec")
    # The source is Interlock's own, written from schemas and mapping files, never from events.
    exec(code, namespace)  # noqa: S102
    # mtime None: linecache.checkcache keeps the entry (there is no file to compare with).
    linecache.cache[generated.filename] = (
        len(source),
        None,
        source.splitlines(keepends=True),
        generated.filename,
    )
    _SOURCES[name] = generated
    return namespace


def generated_function(
    name: str, source: str, namespace: dict[str, Any], function: str
) -> Callable[..., Any]:
    """The function named ``function`` that ``source`` defines (see ``compile_generated``)."""
    built: Callable[..., Any] = compile_generated(name, source, namespace)[function]
    return built


def generated_sources() -> list[GeneratedSource]:
    """Every source generated in this process so far, by name."""
    return [_SOURCES[name] for name in sorted(_SOURCES)]


def generated_source(name: str) -> GeneratedSource | None:
    """The latest source generated under ``name``, or None."""
    return _SOURCES.get(name)
