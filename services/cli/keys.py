"""CLI of access control: API keys, widget tokens, level overrides. ``register(app)`` adds them to ``kamwatch``."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import orjson
import typer
from rich.console import Console
from rich.table import Table

from health_engine import overrides as api_overrides
from services.api.auth import SCOPES, create_key, list_keys, revoke_key
from services.api.widget import mint, signing_secret
from services.platform.database import Database
from services.platform.settings import Settings

T = TypeVar("T")
console = Console()
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``90``, ``45s``, ``30m``, ``1h``, ``7d``, ``2w`` as a positive duration."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) <= 0:
        raise typer.BadParameter(f"{text!r}: expected a positive duration such as 30m, 1h, 7d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _run(work: Callable[[Database, datetime], Awaitable[T]]) -> T:
    async def main() -> T:
        db = await Database.open(Settings())
        try:
            await db.migrate()
            return await work(db, _utc_now())
        finally:
            await db.close()

    return asyncio.run(main())


def _iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


def register(app: typer.Typer) -> None:
    """Add ``apikey``, ``widget-token`` and ``override`` to the kamwatch command line."""
    apikey_app = typer.Typer(help="API keys (stored hashed; the key is shown once, at creation).")
    override_app = typer.Typer(help="Manual level pins on accounts.")
    app.add_typer(apikey_app, name="apikey")
    app.add_typer(override_app, name="override")

    @apikey_app.command("create")
    def apikey_create(
        name: Annotated[str, typer.Option(help="What the key is for (shown in listings and audit rows).")],
        scope: Annotated[list[str], typer.Option(help=f"Repeatable: {', '.join(SCOPES)}.")],
        kam: Annotated[str | None, typer.Option(help="KAM id a read:own key is bound to.")] = None,
        expires_in: Annotated[str | None, typer.Option(help="Lifetime such as 90d (default: none).")] = None,
    ) -> None:
        """Create a key and print it (the only time it is shown)."""
        lifetime = parse_duration(expires_in) if expires_in else None

        async def work(db: Database, now: datetime) -> Any:
            async with db.unit_of_work() as conn:
                return await create_key(
                    conn,
                    name=name,
                    scopes=scope,
                    kam_id=kam,
                    created_by="cli",
                    at=now,
                    expires_at=now + lifetime if lifetime else None,
                )

        try:
            new = _run(work)
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
        console.print(f"key id {new.key_id}, prefix {new.prefix}; store it now, it will not be shown again:")
        typer.echo(new.key)

    @apikey_app.command("list")
    def apikey_list(as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False) -> None:
        """Keys with their prefix, scopes and state (never the key)."""

        async def work(db: Database, now: datetime) -> list[dict[str, Any]]:
            async with db.unit_of_work() as conn:
                rows = await list_keys(conn)
            return [{str(k): v for k, v in row.items() if k != "key_hash"} for row in rows]

        rows = _run(work)
        if as_json:
            for row in rows:
                typer.echo(orjson.dumps(row).decode())
            return
        table = Table("id", "prefix", "name", "scopes", "kam", "created", "expires", "revoked")
        for row in rows:
            table.add_row(
                str(row["id"]),
                row["prefix"],
                row["name"],
                " ".join(row["scopes"]),
                row["kam_id"] or "",
                _iso(row["created_at"]),
                _iso(row["expires_at"]),
                _iso(row["revoked_at"]),
            )
        console.print(table)

    @apikey_app.command("revoke")
    def apikey_revoke(key: Annotated[str, typer.Argument(help="Key id or prefix.")]) -> None:
        """Revoke a key (API processes stop accepting it within their key cache time, 5 s by default)."""

        async def work(db: Database, now: datetime) -> bool:
            async with db.unit_of_work() as conn:
                return await revoke_key(conn, key, at=now)

        if not _run(work):
            console.print(f"no live key {key}")
            raise typer.Exit(1)
        console.print(f"revoked {key}")

    @app.command("widget-token")
    def widget_token(
        account_id: Annotated[str, typer.Argument(help="The account the widget shows.")],
        kam: Annotated[str | None, typer.Option(help="KAM acting through the widget (audit of acks).")] = None,
        ttl: Annotated[str, typer.Option(help="Lifetime such as 15m, 1h, 1d.")] = "1h",
    ) -> None:
        """Print a signed, expiring widget token for one account, and the URL to embed."""
        lifetime = parse_duration(ttl)
        settings = Settings()

        async def work(db: Database, now: datetime) -> str:
            async with db.unit_of_work() as conn:
                secret = await signing_secret(conn, settings, now=now)
            return mint(secret, account_id, kam, (now + lifetime).replace(microsecond=0))

        token = _run(work)
        typer.echo(token)
        url = f"{settings.public_url.rstrip('/')}/widget/accounts/{quote(account_id, safe='')}?token={token}"
        console.print(url, soft_wrap=True)

    @override_app.command("set")
    def override_set(
        account_id: Annotated[str, typer.Argument()],
        level: Annotated[str, typer.Option(help="low, medium, high or critical.")],
        reason: Annotated[str, typer.Option(help="Why (shown with the health).")],
        by: Annotated[str, typer.Option(help="Who pins it.")] = "cli",
        ttl: Annotated[str, typer.Option(help="How long, such as 72h or 14d.")] = "72h",
    ) -> None:
        """Pin an account's level for a while (replaces the pin in force)."""
        if level not in ("low", "medium", "high", "critical"):
            raise typer.BadParameter("level must be low, medium, high or critical")
        lifetime = parse_duration(ttl)

        async def work(db: Database, now: datetime) -> Any:
            async with db.unit_of_work() as conn:
                return await api_overrides.set_override(
                    conn, account_id, level=level, reason=reason, actor=by, now=now, expires_at=now + lifetime
                )

        row = _run(work)
        console.print(f"override {row['id']}: {account_id} pinned {level} until {_iso(row['expires_at'])}")

    @override_app.command("clear")
    def override_clear(
        account_id: Annotated[str, typer.Argument()], by: Annotated[str, typer.Option(help="Who lifts it.")] = "cli"
    ) -> None:
        """Lift the pin in force."""

        async def work(db: Database, now: datetime) -> int:
            async with db.unit_of_work() as conn:
                return await api_overrides.clear_override(conn, account_id, actor=by, now=now)

        if not _run(work):
            console.print(f"{account_id} has no override in force")
            raise typer.Exit(1)
        console.print(f"override of {account_id} lifted")

    @override_app.command("list")
    def override_list(
        account_id: Annotated[str | None, typer.Argument()] = None,
        all_: Annotated[bool, typer.Option("--all", help="Include expired and revoked ones.")] = False,
    ) -> None:
        """Overrides in force (or all of them)."""

        async def work(db: Database, now: datetime) -> Any:
            async with db.unit_of_work() as conn:
                return await api_overrides.list_overrides(conn, now=now, account_id=account_id, include_inactive=all_)

        table = Table("id", "account", "level", "reason", "by", "created", "expires", "revoked")
        for row in _run(work):
            table.add_row(
                str(row["id"]),
                row["account_id"],
                row["level"],
                row["reason"],
                row["created_by"],
                _iso(row["created_at"]),
                _iso(row["expires_at"]),
                f"{_iso(row['revoked_at'])} {row['revoked_by'] or ''}".strip(),
            )
        console.print(table)
