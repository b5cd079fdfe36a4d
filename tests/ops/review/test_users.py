"""Users of the console: hashed passwords and tokens, roles, the users file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from contracts.errors import ConfigError
from interlock.settings import ConsoleSettings, ConsoleUserSettings
from ops.review.users import (
    User,
    add_user,
    can_decide,
    hash_token,
    load_users,
    new_token,
    read_users_file,
)
from tests.ops.review.samples import make_case

pytestmark = pytest.mark.unit


def test_a_users_file_keeps_only_hashes_and_signs_in_with_the_password(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    token = new_token()
    add_user(path, "alice", role="operator", teams=["finance"], password="s3cret-pass")
    add_user(path, "alice", role="operator", teams=["finance"], token=token)
    text = path.read_text()
    assert "s3cret-pass" not in text
    assert token not in text
    assert "$argon2id$" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    users = load_users(ConsoleSettings(users_file=str(path)))
    alice = User("alice", "operator", frozenset({"finance"}))
    assert users.authenticate("alice", "s3cret-pass") == alice  # the password was kept
    assert users.authenticate("alice", "wrong") is None
    assert users.authenticate("nobody", "s3cret-pass") is None
    assert users.by_token(token) == alice
    assert users.by_token(new_token()) is None


def test_settings_users_and_file_users_join(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    add_user(path, "bob", role="admin", teams=[], password="another-pass")
    config = ConsoleSettings(
        users_file=str(path),
        users={"carol": ConsoleUserSettings(role="viewer", token_hash=hash_token("t" * 40))},
    )
    users = load_users(config)
    assert len(users) == 2
    assert users.by_token("t" * 40) == User("carol", "viewer", frozenset())
    assert users.authenticate("carol", "") is None  # no password: no sign-in


def test_a_broken_users_file_names_the_file_and_the_user(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    path.write_text("users:\n  dave: {role: boss}\n")
    with pytest.raises(ConfigError, match=r"users.yaml: user 'dave': role"):
        read_users_file(path)
    path.write_text("- just a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        read_users_file(path)


def test_roles_decide_what_a_user_may_decide() -> None:
    finance_case = make_case(team="finance")
    assert can_decide(User("a", "admin", frozenset()), finance_case)
    assert can_decide(User("o", "operator", frozenset({"finance"})), finance_case)
    assert not can_decide(User("o", "operator", frozenset({"sales-ops"})), finance_case)
    assert not can_decide(User("v", "viewer", frozenset({"finance"})), finance_case)


def test_the_console_commands_add_a_user_and_give_a_token(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from interlock.settings import Settings
    from ops.review.console.cli import make_console_app

    path = tmp_path / "users.yaml"
    settings = Settings(_env_file=None, console=ConsoleSettings(users_file=str(path)))
    app = make_console_app(lambda: settings)
    runner = CliRunner()
    added = runner.invoke(
        app,
        ["add-user", "maria", "--role", "operator", "--team", "finance", "--password-stdin"],
        input="long-enough-pass\n",
    )
    assert added.exit_code == 0, added.output
    token = runner.invoke(app, ["token", "maria"])
    assert token.exit_code == 0, token.output
    users = load_users(settings.console)
    maria = User("maria", "operator", frozenset({"finance"}))
    assert users.authenticate("maria", "long-enough-pass") == maria
    assert users.by_token(token.stdout.strip()) == maria

    short = runner.invoke(app, ["add-user", "x", "--password-stdin"], input="short\n")
    assert short.exit_code == 2
    assert runner.invoke(app, ["add-user", "x", "--role", "boss"]).exit_code == 2
    assert runner.invoke(app, ["token", "nobody"]).exit_code == 1
    hashed = runner.invoke(app, ["hash-password", "--password-stdin"], input="long-enough-pass\n")
    assert hashed.stdout.startswith("$argon2id$")


def test_a_stack_without_users_gets_an_admin_with_a_random_password(tmp_path: Path) -> None:
    from interlock.settings import Settings
    from ops.review.console.cli import bootstrap_admin

    users_file, password_file = tmp_path / "users.yaml", tmp_path / "admin.txt"
    settings = Settings(_env_file=None, console=ConsoleSettings(users_file=str(users_file)))
    bootstrap_admin(settings, password_file)
    password = password_file.read_text().strip()
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    admin = load_users(settings.console).authenticate("admin", password)
    assert admin == User("admin", "admin", frozenset())
    bootstrap_admin(settings, password_file)  # a restart: the admin and its password stay
    assert password_file.read_text().strip() == password
