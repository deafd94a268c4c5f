"""The engine's command line: score, sweep, config, on a real PostgreSQL through the real CLI."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.flows.ingest import Pipeline
from services.platform.database import Database
from services.platform.settings import Settings
from tests.events import at, event, records

AS_OF = datetime(2026, 3, 20, tzinfo=UTC)


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("KAMWATCH_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("KAMWATCH_DATA_DIR", str(settings.data_dir))
    account = {"name": "Acme", "owner_kam_id": "kam-1", "arr": "1000", "currency": "EUR", "tier": "key"}
    departure = {"contact_id": "c1", "change": "left_company", "role": "champion", "name": "Claire Martin"}

    async def seed() -> None:
        db = await Database.open(settings)
        try:
            await Pipeline(db).ingest(
                records(
                    event("account", "acme", at(1), account),
                    event("contact_change", "acme", at(1), {"contact_id": "c1", "change": "added", "role": "champion"}),
                    event("contact_change", "acme", at(10), departure),
                ),
                ingress="http",
            )
        finally:
            await db.close()

    asyncio.run(seed())
    return settings


def test_sweep_then_score(env: Settings) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["score", "acme", "--json"])
    assert missing.exit_code == 1  # not scored yet

    swept = runner.invoke(app, ["sweep", "--as-of", AS_OF.isoformat(), "--shards", "2"])
    assert swept.exit_code == 0, swept.output
    assert "swept 1 accounts in 2 shards" in swept.output

    stored = runner.invoke(app, ["score", "acme", "--json"])
    assert stored.exit_code == 0, stored.output
    score = orjson.loads(stored.output)
    assert score["as_of"] == AS_OF.isoformat()
    assert "relationship.champion_left" in {d["code"] for d in score["drivers"]}

    later = runner.invoke(app, ["score", "acme", "--json", "--as-of", "2026-09-01"])
    assert later.exit_code == 0, later.output
    decayed = orjson.loads(later.output)
    assert "relationship.champion_left" not in {d["code"] for d in decayed["drivers"]}  # decayed after 90 days


def test_config_validate_names_the_offending_field(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["config", "validate"]).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: x\nlevels: {medium: 50, high: 40, critical: 90}\n")
    result = runner.invoke(app, ["config", "validate", str(bad)])
    assert result.exit_code == 2
    assert "levels" in result.output
