"""``kamwatch alerts ...`` through typer, on a real database."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import typer
from typer.testing import CliRunner

from services.cli.alert_actions import register
from services.flows.alerting import build_alerting
from services.platform.database import Database
from services.platform.settings import Settings
from tests.integration.scenario import DEPARTURE, Clock, go_critical, rows


async def _seed(settings: Settings) -> None:
    db = await Database.open(settings)
    try:
        await go_critical(db, build_alerting(settings, notify="none"))
    finally:
        await db.close()


def test_list_act_feedback_and_stats(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(_seed(settings))
    monkeypatch.setenv("KAMWATCH_DATABASE_URL", settings.database_url or "")
    app = typer.Typer()
    register(app, clock=Clock(DEPARTURE.replace(hour=8)))
    cli = CliRunner()

    listed = cli.invoke(app, ["alerts", "list", "--json", "--severity", "critical"])
    assert listed.exit_code == 0, listed.output
    alerts = orjson.loads(listed.output)
    assert {(a["rule"], a["state"], a["delivery"]) for a in alerts} == {
        ("champion_left", "firing", "immediate"),
        ("risk_level", "firing", "immediate"),
        ("sponsor_left", "firing", "immediate"),
    }
    assert all(a["account_name"] == "Acme SA" and a["fired_at"] for a in alerts)
    folded = orjson.loads(cli.invoke(app, ["alerts", "list", "--json", "--delivery", "folded"]).output)
    assert [a["rule"] for a in folded] == ["single_threaded"]

    first, second = (a["id"] for a in alerts[:2])
    assert cli.invoke(app, ["alerts", "ack", str(first), "--actor", "kam-lea"]).exit_code == 0
    assert cli.invoke(app, ["alerts", "snooze", str(second), "--days", "3", "--actor", "kam-lea"]).exit_code == 0
    assert cli.invoke(app, ["alerts", "resolve", str(first), "--actor", "kam-lea"]).exit_code == 0
    again = cli.invoke(app, ["alerts", "ack", str(first)])
    assert again.exit_code == 1  # resolved for good
    assert cli.invoke(app, ["alerts", "feedback", str(first), "useful"]).exit_code == 0
    assert cli.invoke(app, ["alerts", "feedback", str(second), "false_alarm", "--comment", "known"]).exit_code == 0

    stats = {r["rule"]: r for r in orjson.loads(cli.invoke(app, ["alerts", "stats", "--json"]).output)}
    judged = [r for r in stats.values() if r["judged"]]
    assert sorted(r["precision"] for r in judged) == [0.0, 1.0]
    assert all(r["precision"] is None for r in stats.values() if not r["judged"])


async def test_cli_transitions_are_recorded_via_cli(db: Database, settings: Settings) -> None:
    from services.cli.alert_actions import act

    _, as_of = await go_critical(db, build_alerting(settings, notify="none"))
    [(alert_id,)] = await rows(db, "SELECT id FROM alerts WHERE dedup_key = 'acme:risk_level'")
    row = await act(db, alert_id, "snooze", actor="kam-lea", at=as_of, days=7)
    assert row["state"] == "acknowledged"
    assert await rows(
        db, "SELECT actor, via FROM alert_transitions WHERE alert_id = :i AND via = 'cli'", i=alert_id
    ) == [("kam-lea", "cli")]
