"""Who may use the console, and what each may do: users, roles, hashed passwords and tokens.

Users come from settings (``console.users``) and from a YAML users file
(``console.users_file``), which ``interlock console add-user`` writes. Only hashes are kept:
Argon2id for passwords (argon2-cffi), SHA-256 for API tokens (random, 256 bits, so a fast hash
is enough). Roles: a **viewer** reads; an **operator** decides the cases of its teams; an
**admin** decides any case.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import ValidationError

from contracts.errors import ConfigError
from contracts.review import Case
from interlock.settings import ConsoleSettings, ConsoleUserSettings

__all__ = [
    "Role",
    "User",
    "Users",
    "add_user",
    "can_decide",
    "hash_password",
    "hash_token",
    "load_users",
    "new_token",
    "read_users_file",
]

Role = Literal["viewer", "operator", "admin"]

# OWASP's Argon2id baseline (19 MiB, 2 passes, 1 lane): a sign-in costs tens of milliseconds on
# a busy two-core machine, where the library's default (64 MiB, 3 passes, 4 lanes) took a second.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
# Verified when the user is unknown, so that an unknown name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class User:
    """A signed-in (or token-holding) user of the console."""

    name: str
    role: Role
    teams: frozenset[str]


def hash_password(password: str) -> str:
    """The Argon2id hash of ``password`` (salted; PHC string)."""
    return _HASHER.hash(password)


def new_token() -> str:
    """A fresh API token (shown once; only its hash is stored)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the users file keeps of a token."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def can_decide(user: User, case: Case) -> bool:
    """An admin decides any case, an operator those of its teams, a viewer none."""
    if user.role == "admin":
        return True
    return user.role == "operator" and case.team in user.teams


class Users:
    """The users the console knows, by name."""

    def __init__(self, entries: Mapping[str, ConsoleUserSettings]) -> None:
        self._entries = dict(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def _user(self, name: str) -> User:
        entry = self._entries[name]
        return User(name, entry.role, frozenset(entry.teams))

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs; None otherwise (same cost either way)."""
        entry = self._entries.get(name)
        stored = entry.password_hash if entry is not None else None
        try:
            _HASHER.verify(stored or _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        return self._user(name) if entry is not None and stored else None

    def by_token(self, token: str) -> User | None:
        """The user whose API token this is, or None."""
        digest = hash_token(token)
        for name, entry in self._entries.items():
            if entry.token_hash and hmac.compare_digest(entry.token_hash, digest):
                return self._user(name)
        return None

    def get(self, name: str) -> User | None:
        """The user called ``name`` (None once removed: a session of theirs ends)."""
        return self._user(name) if name in self._entries else None


def read_users_file(path: Path) -> dict[str, ConsoleUserSettings]:
    """The users of a users file ({} when it does not exist); errors name the file and user."""
    if not path.exists():
        return {}
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not YAML: {exc}") from exc
    raw = doc.get("users") if isinstance(doc, dict) else None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping 'users: {{name: {{role, teams, ...}}}}'")
    users: dict[str, ConsoleUserSettings] = {}
    for name, entry in raw.items():
        try:
            users[str(name)] = ConsoleUserSettings.model_validate(entry or {})
        except ValidationError as exc:
            fields = ", ".join(".".join(map(str, e["loc"])) + ": " + e["msg"] for e in exc.errors())
            raise ConfigError(f"{path}: user {name!r}: {fields}") from exc
    return users


def load_users(config: ConsoleSettings) -> Users:
    """The users of settings and of the users file (the file's win on a name in both)."""
    entries = dict(config.users)
    if config.users_file:
        entries.update(read_users_file(Path(config.users_file)))
    return Users(entries)


def add_user(
    path: Path,
    name: str,
    *,
    role: Role,
    teams: list[str],
    password: str | None = None,
    token: str | None = None,
) -> None:
    """Add or update ``name`` in the users file (written atomically, mode 0600).

    ``password``/``token`` replace the stored hash when given; otherwise what was stored stays.
    """
    users = read_users_file(path)
    held = users.get(name, ConsoleUserSettings())
    users[name] = ConsoleUserSettings(
        role=role,
        teams=teams,
        password_hash=hash_password(password) if password is not None else held.password_hash,
        token_hash=hash_token(token) if token is not None else held.token_hash,
    )
    doc: dict[str, Any] = {
        "users": {n: u.model_dump(exclude_none=True) for n, u in sorted(users.items())}
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            yaml.safe_dump(doc, handle, sort_keys=False)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
