"""Access from the command line: ``apikey`` and ``widget-token``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import orjson
import typer
from rich.table import Table

from health_engine.access import SCOPES, account_owner, create_key, list_keys, mint, revoke_key, signing_secret
from services.cli.common import console, iso, parse_duration, run_with_db
from services.platform.clock import utc_now
from services.platform.database import Database
from services.platform.settings import Settings

T = TypeVar("T")


def register(app: typer.Typer, *, clock: Callable[[], datetime] = utc_now) -> None:
    """Add ``apikey`` and ``widget-token`` to ``app``."""
    apikey_app = typer.Typer(help="API keys (stored hashed; the key is shown once, at creation).")
    app.add_typer(apikey_app, name="apikey")

    @apikey_app.command("create")
    def apikey_create(
        name: Annotated[str, typer.Option(help="What the key is for (shown in listings and audit rows).")],
        scope: Annotated[list[str], typer.Option(help=f"Repeatable: {', '.join(SCOPES)}.")],
        kam: Annotated[
            str | None,
            typer.Option(help="KAM the key is bound to (it acts on, and read:own sees, their accounts)."),
        ] = None,
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
            new = run_with_db(work, clock=clock)
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

        rows = run_with_db(work, clock=clock)
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
                iso(row["created_at"]),
                iso(row["expires_at"]),
                iso(row["revoked_at"]),
            )
        console.print(table)

    @apikey_app.command("revoke")
    def apikey_revoke(key: Annotated[str, typer.Argument(help="Key id or prefix.")]) -> None:
        """Revoke a key (API processes stop accepting it within their key cache time, 5 s by default)."""

        async def work(db: Database, now: datetime) -> bool:
            async with db.unit_of_work() as conn:
                return await revoke_key(conn, key, at=now)

        if not run_with_db(work, clock=clock):
            console.print(f"no live key {key}")
            raise typer.Exit(1)
        console.print(f"revoked {key}")

    @app.command("widget-token")
    def widget_token(
        account_id: Annotated[str, typer.Argument(help="The account the widget shows.")],
        kam: Annotated[str | None, typer.Option(help="KAM acting through the widget (audit of acks).")] = None,
        ttl: Annotated[str, typer.Option(help="Lifetime such as 15m, 1h, 1d.")] = "15m",
    ) -> None:
        """Print a signed, expiring widget token for one account, and the URL to embed (it also ends when the
        account changes owner)."""
        lifetime = parse_duration(ttl)
        settings = Settings()

        async def work(db: Database, now: datetime) -> str | None:
            async with db.unit_of_work() as conn:
                exists, owner = await account_owner(conn, account_id)
                if not exists:
                    return None
                secret = await signing_secret(conn, settings.configured_widget_secret, now=now)
            expires = (now + lifetime).replace(microsecond=0)
            return mint(secret, account_id, kam, expires, key_id=None, owner_kam_id=owner)

        token = run_with_db(work, clock=clock)
        if token is None:
            console.print(f"no account {account_id}")
            raise typer.Exit(1)
        typer.echo(token)
        url = f"{settings.public_url.rstrip('/')}/widget/accounts/{quote(account_id, safe='')}?token={token}"
        console.print(url, soft_wrap=True)
