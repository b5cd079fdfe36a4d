"""``interlock up`` plans the console as one of its services, with a first sign-in if need be."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlock.services import console_sign_in, plan_services
from interlock.settings import ConsoleSettings, MetricsSettings, Settings, WebhookSettings

pytestmark = pytest.mark.unit


def free_ports(**update: object) -> Settings:
    return Settings(
        _env_file=None,
        metrics=MetricsSettings(port=0),
        webhooks=WebhookSettings(port=0),
        **update,  # type: ignore[arg-type]
    )


def test_up_starts_the_console_and_lets_it_create_a_first_admin(tmp_path: Path) -> None:
    (plan,) = [p for p in plan_services(free_ports(), 1, tmp_path) if p.name == "console"]
    assert plan.args[:2] == ["console", "--port"]
    assert plan.args[3:] == ["--first-admin", str(tmp_path / "console-admin.txt")]
    assert plan.env == {"INTERLOCK_CONSOLE__USERS_FILE": str(tmp_path / "console-users.yaml")}
    assert not plan.consumes  # it assigns partitions; it is no group member to wait for
    assert plan.endpoints["exception desk console"] == f"http://127.0.0.1:{plan.args[2]}"
    assert console_sign_in(plan) == f"admin, password in {tmp_path / 'console-admin.txt'}"


def test_configured_users_get_no_first_admin(tmp_path: Path) -> None:
    configured = free_ports(console=ConsoleSettings(users_file=str(tmp_path / "u.yaml"), port=0))
    (plan,) = [p for p in plan_services(configured, 1, tmp_path) if p.name == "console"]
    assert "--first-admin" not in plan.args
    assert plan.env == {}
    assert console_sign_in(plan) is None
