"""``interlock up --erp/--cdc``: a wrong combination is refused before anything starts."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from interlock.cli import app

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--erp", "mysql"], "--erp is direct or postgres"),
        (["--cdc", "debezium"], "--cdc is builtin or debezium, and only with --erp postgres"),
        (["--erp", "postgres", "--cdc", "maxwell"], "--cdc is builtin or debezium"),
    ],
)
def test_a_wrong_erp_or_cdc_is_refused(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["up", *args])
    assert result.exit_code == 2
    assert message in result.output
