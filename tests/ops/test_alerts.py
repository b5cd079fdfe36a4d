"""Alert rules: promtool accepts them, their unit tests pass, every alert has its runbook."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "ops" / "prometheus"
RULES = PROMETHEUS / "rules" / "interlock.rules.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: run `make system-tools` (Debian package prometheus)"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def alerts() -> list[dict[str, object]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_of_the_rules() -> None:
    tests = sorted(str(p) for p in (PROMETHEUS / "tests").glob("*.yml"))
    assert tests
    result = promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config(tmp_path: Path) -> None:
    # The compose config loads rules from /etc/prometheus/rules: point it at the repository's.
    text = (PROMETHEUS / "prometheus.yml").read_text()
    config = tmp_path / "prometheus.yml"
    config.write_text(text.replace("/etc/prometheus/rules/", f"{PROMETHEUS / 'rules'}/"))
    result = promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested() -> None:
    tested = set()
    for path in (PROMETHEUS / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested |= {
                t["alertname"] for t in case.get("alert_rule_test", []) if t.get("exp_alerts")
            }
    assert {str(a["alert"]) for a in alerts()} <= tested


@pytest.mark.parametrize("rule", alerts(), ids=lambda r: str(r["alert"]))
def test_alert_has_a_runbook_that_explains_it(rule: dict[str, object]) -> None:
    annotations = rule["annotations"]
    assert isinstance(annotations, dict)
    url = annotations["runbook_url"]
    assert url == f"ops/runbooks/{rule['alert']}.md"
    page = (ROOT / url).read_text()
    assert page.startswith(f"# {rule['alert']}")
    for part in ("**Meaning.**", "**Check.**", "**Do.**"):
        assert part in page
    assert rule["labels"]["severity"] in {"warning", "critical"}  # type: ignore[index]
