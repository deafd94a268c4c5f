"""``kamwatch postmortem ACCOUNT``: the post-mortem of a lost account in the terminal (or as JSON)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from alerts.phrasing import rule_name
from health_engine.config import load_scoring_config
from schemas.vocabulary import Locale
from services.cli.common import console, opened, run
from services.flows import postmortem as pm
from services.flows.notifying import alerts_config
from services.platform.settings import Settings


def _day(value: str | None) -> str:
    return "-" if value is None else value[:10]


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} d"


def register(app: typer.Typer) -> None:
    @app.command()
    def postmortem(
        account_id: Annotated[str, typer.Argument(help="Account id.")],
        as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
        locale: Annotated[str, typer.Option("--locale", help="Language of rule names: en or fr.")] = "en",
    ) -> None:
        """The post-mortem of an account's latest loss: signals before the outcome, when each rule would have
        fired (replayed in hindsight) and did, when the KAM was told and acted, the lead time, silent rules."""
        language: Locale = "fr" if locale == "fr" else "en"

        async def main(settings: Settings) -> dict[str, Any] | None:
            async with opened(settings) as db, db.transaction() as conn:
                loss = await pm.last_loss(conn, account_id)
                if loss is None:
                    return None
                found = await pm.account_post_mortem(
                    conn, loss, load_scoring_config(settings.scoring_config), alerts_config(settings)
                )
            return pm.post_mortem_document(found, lambda rule: rule_name(rule, language))

        document = run(main)
        if document is None:
            console.print(f"[red]no loss recorded for {account_id}[/]")
            raise typer.Exit(1)
        if as_json:
            typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
            return
        account = document["account"]
        console.print(
            f"[bold]{account['name']}[/] ({account['account_id']}): {account['outcome']} on "
            f"{_day(account['outcome_at'])}" + (f" ({account['reason']})" if account["reason"] else "")
        )
        console.print(
            f"KAM {account['owner']['name'] or account['owner']['kam_id']} first told "
            f"{_days(document['lead_days'])} before; earliest possible warning {_days(document['possible_lead_days'])}"
        )
        table = Table("rule", "would fire", "fired", "told", "acknowledged", "lead", "lost")
        for rule in document["rules"]:
            table.add_row(
                rule["label"],
                _day(rule["would_fire_at"]),
                _day(rule["fired_at"]),
                _day(rule["told_at"]),
                _day(rule["acknowledged_at"]),
                _days(rule["lead_days"]),
                _days(rule["lost_days"]),
            )
        console.print(table)
        silent = ", ".join(rule["label"] for rule in document["silent_rules"]) or "none"
        console.print(f"silent rules: {silent}")
        for signal in document["signals"]:
            console.print(f"  {_day(signal['at'])}  {signal['type'].removeprefix('kamwatch.')}  {signal['data']}")
