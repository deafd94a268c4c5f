"""kamwatch apikey / widget-token / override, through typer on the test database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import typer
from typer.testing import CliRunner

from health_engine.access import verify
from services.cli import health, keys
from services.cli.common import parse_duration
from services.platform.database import Database
from services.platform.settings import Settings
from tests.integration.api import seed

runner = CliRunner()


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    assert settings.database_url
    monkeypatch.setenv("KAMWATCH_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("KAMWATCH_WIDGET_TOKEN_SECRET", "w" * 40)
    monkeypatch.setenv("KAMWATCH_PUBLIC_URL", "https://kamwatch.example.com")
    app = typer.Typer()
    keys.register(app)
    health.register(app)
    return app


def test_parse_duration() -> None:
    assert parse_duration("1h") == timedelta(hours=1)
    assert parse_duration("90") == timedelta(seconds=90)
    assert parse_duration("2w") == timedelta(weeks=2)
    for bad in ("0h", "soon", "-1h", "1y"):
        with pytest.raises(typer.BadParameter):
            parse_duration(bad)


def test_apikey_create_list_revoke(cli: typer.Typer) -> None:
    created = runner.invoke(cli, ["apikey", "create", "--name", "lea-crm", "--scope", "read:own", "--kam", "kam-lea"])
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert key.startswith("kw_")
    unbound = runner.invoke(cli, ["apikey", "create", "--name", "x", "--scope", "read:own"])
    assert unbound.exit_code != 0

    listed = runner.invoke(cli, ["apikey", "list", "--json"])
    rows = [orjson.loads(line) for line in listed.output.splitlines()]
    assert [(r["name"], r["scopes"], r["kam_id"], r["revoked_at"]) for r in rows] == [
        ("lea-crm", ["read:own"], "kam-lea", None)
    ]
    assert key not in listed.output
    assert "key_hash" not in rows[0]

    prefix = key.split("_")[1]
    assert runner.invoke(cli, ["apikey", "revoke", prefix]).exit_code == 0
    assert runner.invoke(cli, ["apikey", "revoke", prefix]).exit_code == 1
    rows = [orjson.loads(line) for line in runner.invoke(cli, ["apikey", "list", "--json"]).output.splitlines()]
    assert rows[0]["revoked_at"] is not None
    assert "lea-crm" in runner.invoke(cli, ["apikey", "list"]).output


async def _seed_account(settings: Settings) -> None:
    db = await Database.open(settings)
    try:
        async with db.unit_of_work() as conn:
            await seed.account(conn, "acme", "kam-lea")
    finally:
        await db.close()


def test_widget_token(cli: typer.Typer, settings: Settings) -> None:
    unknown = runner.invoke(cli, ["widget-token", "acme"])
    assert unknown.exit_code == 1  # nothing to bind it to
    asyncio.run(_seed_account(settings))
    result = runner.invoke(cli, ["widget-token", "acme", "--kam", "kam-lea", "--ttl", "1h"])
    assert result.exit_code == 0, result.output
    token = result.output.splitlines()[0]
    assert "https://kamwatch.example.com/widget/accounts/acme?token=" in result.output.replace("\n", "")
    grant = verify(b"w" * 40, token, account_id="acme", now=datetime.now(UTC))
    assert (grant.kam_id, grant.owner_kam_id, grant.key_id) == ("kam-lea", "kam-lea", None)
    assert timedelta(minutes=59) < grant.expires_at - datetime.now(UTC) <= timedelta(hours=1)
    default = verify(
        b"w" * 40,
        runner.invoke(cli, ["widget-token", "acme"]).output.splitlines()[0],
        account_id="acme",
        now=datetime.now(UTC),
    )
    assert default.expires_at - datetime.now(UTC) <= timedelta(minutes=15)


def test_override_set_list_clear(cli: typer.Typer) -> None:
    set_ = runner.invoke(cli, ["override", "set", "acme", "--level", "low", "--reason", "signed", "--by", "kam-lea"])
    assert set_.exit_code == 0, set_.output
    assert "acme" in runner.invoke(cli, ["override", "list"]).output
    assert runner.invoke(cli, ["override", "clear", "acme"]).exit_code == 0
    assert runner.invoke(cli, ["override", "clear", "acme"]).exit_code == 1
    assert "acme" not in runner.invoke(cli, ["override", "list"]).output
    assert "signed" in runner.invoke(cli, ["override", "list", "--all"]).output
    assert runner.invoke(cli, ["override", "set", "acme", "--level", "dire", "--reason", "x"]).exit_code != 0
