"""``kamwatch sweep`` goes on past a poisoned account and ``kamwatch quarantine list|retry`` show and take it back,
through the real CLI on a real PostgreSQL."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.flows.ingest import Pipeline
from services.platform.database import Database
from services.platform.settings import Settings
from tests.events import at, event, records

AS_OF = "2026-03-20T00:00:00+00:00"


async def execute(settings: Settings, sql: str) -> None:
    db = await Database.open(settings)
    try:
        async with db.transaction() as conn:
            await conn.execute(sql)
    finally:
        await db.close()


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("KAMWATCH_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("KAMWATCH_DATA_DIR", str(settings.data_dir))
    profile = {"owner_kam_id": "kam-1", "arr": "1000", "currency": "EUR", "tier": "key"}
    invoice = {"invoice_id": "I-1", "status": "paid", "amount": "10", "currency": "EUR", "due_date": "2026-03-20"}

    async def seed() -> None:
        db = await Database.open(settings)
        try:
            documents = [event("account", s, at(1), {**profile, "name": s}) for s in ("acme", "beta", "gamma")]
            await Pipeline(db).ingest(records(*documents, event("payment", "beta", at(2), invoice)), ingress="http")
        finally:
            await db.close()

    asyncio.run(seed())
    asyncio.run(execute(settings, "UPDATE invoices SET paid_at = '9999-12-31 23:59:59-05'"))
    return settings


def test_sweep_sets_the_poisoned_account_aside_and_retry_takes_it_back_once_fixed(env: Settings) -> None:
    runner = CliRunner()
    swept = runner.invoke(app, ["sweep", "--as-of", AS_OF, "--shards", "2"])
    assert swept.exit_code == 0, swept.output
    assert "swept 3 accounts in 2 shards" in swept.output

    listed = runner.invoke(app, ["quarantine", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    [entry] = [orjson.loads(line) for line in listed.output.splitlines()]
    assert (entry["account_id"], entry["stage"], entry["trigger"], entry["failures"]) == ("beta", "scoring", "sweep", 1)
    assert "OverflowError" in entry["error"]
    assert {e["type"] for e in entry["events"]} == {"kamwatch.account.v1", "kamwatch.payment.v1"}
    table = runner.invoke(app, ["quarantine", "list"])
    assert "beta" in table.output

    still = runner.invoke(app, ["quarantine", "retry", "--as-of", AS_OF])
    assert still.exit_code == 1
    assert "still quarantined: beta" in still.output

    asyncio.run(execute(env, "UPDATE invoices SET paid_at = NULL"))
    fixed = runner.invoke(app, ["quarantine", "retry", "beta", "--as-of", AS_OF])
    assert fixed.exit_code == 0, fixed.output
    assert "released 1 account(s); 0 still quarantined" in fixed.output
    assert runner.invoke(app, ["quarantine", "list"]).output.strip() == "no account is quarantined"
    scored = runner.invoke(app, ["score", "beta", "--json"])
    assert orjson.loads(scored.output)["as_of"] == AS_OF
