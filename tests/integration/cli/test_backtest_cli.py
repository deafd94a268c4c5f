"""`kamwatch backtest` end to end: a simulated history replayed as lived into a scratch embedded PostgreSQL."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from health_engine.config import DEFAULT_CONFIG_PATH
from services.cli.main import app
from services.simulator.generator import simulate_to_dir

pytestmark = pytest.mark.processes


def test_backtest_reports_each_horizon_for_both_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAMWATCH_DATABASE_URL", raising=False)
    monkeypatch.setenv("KAMWATCH_DATA_DIR", str(tmp_path / "data"))
    summary = simulate_to_dir(tmp_path / "sim", 16, 2, 150, 3, date(2026, 1, 1))
    candidate = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    candidate["version"] = "candidate"
    candidate["levels"] = {"medium": 20, "high": 35, "critical": 60}  # flags more
    candidate_path = tmp_path / "candidate.yaml"
    candidate_path.write_text(yaml.safe_dump(candidate))

    result = CliRunner().invoke(app, ["backtest", str(summary.events_path), "--compare", str(candidate_path), "--json"])

    assert result.exit_code == 0, result.output
    report = orjson.loads(result.output)
    assert report["events"] == summary.events
    current, shadow = report["configs"]
    assert shadow["config_version"] == "candidate"
    assert current["accounts"] == shadow["accounts"] == 16
    assert [h["horizon_days"] for h in current["horizons"]] == [30, 60, 90]
    assert current["horizons"][0]["losses"] == shadow["horizons"][0]["losses"]
    # Lower cut-offs never flag fewer accounts on the same scores.
    assert shadow["horizons"][0]["flagged"] >= current["horizons"][0]["flagged"]
    assert not list((tmp_path / "data").glob("backtest-*"))  # the scratch database is gone
