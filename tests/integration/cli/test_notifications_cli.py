"""``kamwatch notifications list|retry`` through typer, on a real database: what the alerter gave up on is
listed with its reason and queued again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest
import typer
from typer.testing import CliRunner

from alerts.messages import AlertItem, AlertMessage
from alerts.model import OutboxRow
from alerts.outbox import message_payload
from alerts.repository import queue as outbox
from services.cli.notifications import register
from services.platform.database import Database
from services.platform.settings import Settings
from tests.integration.scenario import Clock, rows
from tests.unit.alerts.helpers import snapshot

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


async def _given_up(settings: Settings) -> list[int]:
    item = AlertItem(1, "acme:usage_drop", "usage_drop", "warning", "Usage down", "Usage en baisse", NOW)
    payload = message_payload(AlertMessage("immediate", snapshot(), (item,)), to="U1", locale="en", timezone="UTC")
    queued = [OutboxRow("immediate", "slack", "kam-lea", "kam-lea", (1,), payload, NOW) for _ in range(3)]
    db = await Database.open(settings)
    try:
        async with db.transaction() as conn:
            ids = await outbox.enqueue(conn, queued, NOW)
            await outbox.record_attempt(
                conn, ids[:1], NOW, error="undeliverable: no Slack", retry_at=None, undeliverable=True
            )
            await outbox.record_attempt(conn, ids[1:2], NOW, error="TimeoutError: down", retry_at=None)
        return ids
    finally:
        await db.close()


def test_list_then_retry_what_was_given_up_on(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    undeliverable, failed, pending = asyncio.run(_given_up(settings))
    monkeypatch.setenv("KAMWATCH_DATABASE_URL", settings.database_url or "")
    app = typer.Typer()
    register(app, clock=Clock(NOW))
    cli = CliRunner()

    listed = cli.invoke(app, ["notifications", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(n["id"], n["status"], n["last_error"]) for n in orjson.loads(listed.output)] == [
        (undeliverable, "undeliverable", "undeliverable: no Slack"),
        (failed, "failed", "TimeoutError: down"),
    ]
    only_failed = orjson.loads(cli.invoke(app, ["notifications", "list", "--status", "failed", "--json"]).output)
    assert [n["id"] for n in only_failed] == [failed]
    assert cli.invoke(app, ["notifications", "list"]).exit_code == 0  # the table

    retried = cli.invoke(app, ["notifications", "retry", "--status", "failed"])
    assert retried.exit_code == 0, retried.output
    assert f"[{failed}]" in retried.output
    assert cli.invoke(app, ["notifications", "retry", str(undeliverable), str(pending)]).exit_code == 0

    async def statuses() -> list[tuple[object, ...]]:
        db = await Database.open(settings)
        try:
            return await rows(db, "SELECT id, status, failing_since FROM notifications ORDER BY id")
        finally:
            await db.close()

    assert asyncio.run(statuses()) == [(i, "pending", None) for i in (undeliverable, failed, pending)]
    assert orjson.loads(cli.invoke(app, ["notifications", "list", "--json"]).output) == []
