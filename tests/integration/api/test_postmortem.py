"""Post-mortems of a lost account through the API, the CLI and the losses list, on a portfolio scored as lived:
what would have fired (replayed in hindsight), what fired, when the KAM was told and acted, the lead time."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from services.cli.main import app as cli
from services.platform.database import Database
from services.platform.settings import Settings
from tests.integration.api import story
from tests.integration.api.conftest import make_app


async def test_post_mortem_of_a_lost_account(
    settings: Settings, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await story.build(db, settings, tmp_path)
    auth = {"Authorization": f"Bearer {world.admin_key}"}
    application = make_app(settings, db)
    application.state.clock = lambda: story.NOW
    transport = httpx.ASGITransport(app=application)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=transport, base_url="http://t") as http,
    ):
        found = (await http.get("/v1/accounts/globex/postmortem?locale=fr", headers=auth)).json()
        never_lost = await http.get("/v1/accounts/acme/postmortem", headers=auth)
        losses = (await http.get("/v1/portfolio/losses", headers=auth)).json()

    assert found["account"]["outcome"] == "churned"
    assert found["account"]["outcome_at"].startswith(story.LOST_AT.date().isoformat())
    rules = {r["rule"]: r for r in found["rules"]}
    champion = rules["champion_left"]
    departure = story.LOST_AT - timedelta(days=75)
    # the champion left 75 days before: the rule would have fired then, did, and the KAM was told minutes later
    assert champion["would_fire_at"][:10] == departure.date().isoformat()
    assert champion["fired_at"][:10] == departure.date().isoformat()
    assert champion["label"] == "Départ du champion"
    assert champion["actions"][0]["actor"] == "kam-tom"
    assert champion["actions"][0]["via"] == "slack"
    assert 74 <= found["lead_days"] <= 76
    assert 74 <= found["possible_lead_days"] <= 76
    assert {n["channel"] for n in found["notifications"]} == {"slack", "email"}
    silent = {r["rule"] for r in found["silent_rules"]}
    assert "payment_late" in silent  # Globex always paid
    assert not silent & set(rules)
    assert [s["type"] for s in found["signals"]][-1] == "kamwatch.outcome.v1"
    assert all(datetime.fromisoformat(s["at"]) <= story.LOST_AT for s in found["signals"])
    assert found["risk"][-1]["level"] in ("high", "critical")
    assert never_lost.status_code == 404
    assert [item["account"]["account_id"] for item in losses["items"]] == ["globex"]
    assert 74 <= losses["items"][0]["lead_days"] <= 76

    monkeypatch.setenv("KAMWATCH_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("KAMWATCH_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    shown = await asyncio.to_thread(runner.invoke, cli, ["postmortem", "globex", "--json"])
    table = await asyncio.to_thread(runner.invoke, cli, ["postmortem", "globex"])
    missing = await asyncio.to_thread(runner.invoke, cli, ["postmortem", "acme"])

    assert shown.exit_code == 0, shown.output
    assert orjson.loads(shown.output)["lead_days"] == found["lead_days"]
    assert "Champion" in table.output
    assert missing.exit_code == 1
