"""promtool validates the Prometheus config and rules, runs the rule unit tests and parses the dashboards' PromQL."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deployfiles import DASHBOARDS, PROMETHEUS_DIR, RULES, dashboard_expressions, with_macros_replaced

pytestmark = pytest.mark.processes

SKIP_REASON = "promtool not installed (Debian package prometheus; .ci/run installs it)"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(SKIP_REASON)
    return path


def run(*command: str, cwd: Path = PROMETHEUS_DIR) -> str:
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    return output


def test_rules_are_valid(promtool: str) -> None:
    assert "SUCCESS" in run(promtool, "check", "rules", str(RULES))


def test_config_is_valid(promtool: str) -> None:
    # rule_files is relative to the config file: checked from elsewhere to prove it.
    output = run(promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"), cwd=Path("/"))
    assert "1 rule files found" in output


def test_rule_unit_tests_pass(promtool: str) -> None:
    run(promtool, "test", "rules", "rules_test.yml")


def test_dashboard_expressions_parse(promtool: str, tmp_path: Path) -> None:
    # promtool has no bare expression check: each expression becomes a recording rule.
    rules = [
        {"record": f"dashboard:{path.stem}:{index}", "expr": with_macros_replaced(expr)}
        for path in DASHBOARDS
        for index, expr in enumerate(dashboard_expressions(path))
    ]
    rule_file = tmp_path / "dashboards.rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))

    assert f"SUCCESS: {len(rules)} rules found" in run(promtool, "check", "rules", str(rule_file))
