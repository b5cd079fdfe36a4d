"""What a PostgreSQL server needs before the built-in CDC source can decode its log."""

from __future__ import annotations

__all__ = ["logical_decoding_problems"]


def logical_decoding_problems(wal_level: str | None, output_plugins: str | None) -> list[str]:
    """What a server with these settings lacks for wal2json logical decoding (empty: nothing).

    ``output_plugins`` is ``output_plugin_libraries``, a setting some builds (Debian's
    PostgreSQL 15 here) add to allow-list decoding plugins; ``None`` where it does not exist.
    """
    problems = []
    if wal_level != "logical":
        problems.append(
            f"wal_level is {wal_level!r}, CDC needs 'logical': set `wal_level = logical` in "
            "postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and restart the server"
        )
    if output_plugins is not None:
        allowed = {p.strip() for p in output_plugins.split(",")}
        if "wal2json" not in allowed:
            problems.append(
                f"output_plugin_libraries is {output_plugins!r} and does not allow wal2json: "
                f"set `output_plugin_libraries = '{output_plugins}, wal2json'` and reload"
            )
    return problems
