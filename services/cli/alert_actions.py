"""``kamwatch alerts ...``: alerts from the command line.

``register(app)`` adds them to the main typer app. The async functions under the commands take the database
and the time explicitly, so they are tested without a terminal.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from alerts.repository import lifecycle, reports
from services.cli.common import aware, console, opened
from services.platform.clock import utc_now
from services.platform.database import Database
from services.platform.settings import Settings

# Module level: typer resolves the (postponed) annotations in the module's namespace.
ActorOption = Annotated[str | None, typer.Option(help="Who acts (default: the OS user).")]
NoteOption = Annotated[str | None, typer.Option(help="A note kept with the transition.")]


class StateChoice(StrEnum):
    firing = "firing"
    acknowledged = "acknowledged"
    resolved = "resolved"


class SeverityChoice(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


class DeliveryChoice(StrEnum):
    immediate = "immediate"
    digest = "digest"
    folded = "folded"


class VerdictChoice(StrEnum):
    useful = "useful"
    false_alarm = "false_alarm"


def _clearing(row: dict[str, Any]) -> str:
    """For the table: an open alert held while its condition is clear, and when it resolves."""
    return f", clearing until {row['resolves_at'][:16]}" if row.get("resolves_at") else ""


def _alert_json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


# --- the work under the commands -------------------------------------------------------------------------


async def list_alerts(db: Database, filters: reports.AlertFilters) -> list[dict[str, Any]]:
    async with db.transaction() as conn:
        return [_alert_json(r) for r in await reports.list_alerts(conn, filters)]


async def act(
    db: Database,
    alert_id: int,
    action: str,
    *,
    actor: str,
    at: datetime,
    days: float = 7.0,
    note: str | None = None,
) -> dict[str, Any]:
    """``ack``, ``snooze`` (``days``) or ``resolve`` an alert through alerts.store, recorded ``via="cli"``."""
    to_state: lifecycle.StoredState = "resolved" if action == "resolve" else "acknowledged"
    until = at + timedelta(days=days) if action == "snooze" else None
    async with db.transaction() as conn:
        row = await lifecycle.transition(
            conn, alert_id, to_state, actor=actor, via="cli", at=at, snoozed_until=until, note=note
        )
    return _alert_json(row)


async def feedback(
    db: Database, alert_id: int, verdict: lifecycle.Verdict, *, actor: str, at: datetime, comment: str | None
) -> int:
    async with db.transaction() as conn:
        return await lifecycle.record_feedback(conn, alert_id, verdict, actor=actor, at=at, comment=comment, via="cli")


async def stats(db: Database) -> list[reports.RulePrecision]:
    async with db.transaction() as conn:
        return await reports.feedback_by_rule(conn)


# --- typer -------------------------------------------------------------------------------------------------


def register(app: typer.Typer, *, clock: Callable[[], datetime] = utc_now) -> None:
    """Add the ``alerts`` group to ``app``."""
    alerts_app = typer.Typer(help="Alerts: list, acknowledge, snooze, resolve, feedback, precision per rule.")
    app.add_typer(alerts_app, name="alerts")

    def run(main: Callable[[Database], Any]) -> Any:
        async def go() -> Any:
            async with opened(Settings()) as db:
                return await main(db)

        try:
            return asyncio.run(go())
        except lifecycle.AlertNotFound as error:
            console.print(f"[red]no alert {error.args[0]}[/red]")
            raise typer.Exit(1) from None
        except lifecycle.InvalidTransition as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from None

    @alerts_app.command("list")
    def list_command(
        as_json: Annotated[bool, typer.Option("--json", help="One JSON document (a list), for scripts.")] = False,
        account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
        rule: Annotated[str | None, typer.Option(help="Only this rule (e.g. usage_drop).")] = None,
        severity: Annotated[SeverityChoice | None, typer.Option(help="Only this severity.")] = None,
        state: Annotated[StateChoice | None, typer.Option(help="Only this state (default: all).")] = None,
        delivery: Annotated[DeliveryChoice | None, typer.Option(help="How it was or will be delivered.")] = None,
        fired_after: Annotated[
            datetime | None, typer.Option(help="Fired at or after (ISO 8601, UTC if naive).")
        ] = None,
        fired_before: Annotated[datetime | None, typer.Option(help="Fired before (ISO 8601, UTC if naive).")] = None,
        limit: Annotated[int | None, typer.Option(min=1, help="At most this many, newest first.")] = None,
    ) -> None:
        """Every alert (newest first) with account, rule, severity, fired_at, state and delivery."""
        filters = reports.AlertFilters(
            account_id=account,
            rule=rule,
            severity=severity.value if severity else None,
            state=state.value if state else None,
            delivery=delivery.value if delivery else None,
            fired_after=aware(fired_after),
            fired_before=aware(fired_before),
            limit=limit,
        )
        rows: list[dict[str, Any]] = run(lambda db: list_alerts(db, filters))
        if as_json:
            typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
            return
        table = Table("id", "account", "rule", "severity", "fired_at", "state", "delivery")
        for r in rows:
            table.add_row(
                str(r["id"]),
                r["account_name"] or r["account_id"],
                r["rule"] + (f" ({r['subject']})" if r["subject"] else ""),
                r["severity"],
                r["fired_at"][:16],
                r["state"] + ("" if r["state"] == "resolved" else _clearing(r)),
                r["delivery"] or "-",
            )
        console.print(table)

    @alerts_app.command("ack")
    def ack_command(alert_id: int, actor: ActorOption = None, note: NoteOption = None) -> None:
        """Acknowledge an alert."""
        _show(run(lambda db: act(db, alert_id, "ack", actor=actor or getpass.getuser(), at=clock(), note=note)))

    @alerts_app.command("snooze")
    def snooze_command(
        alert_id: int,
        days: Annotated[float, typer.Option(min=0.01, help="How long.")] = 7.0,
        actor: ActorOption = None,
        note: NoteOption = None,
    ) -> None:
        """Acknowledge an alert for a while: no notification about it until then."""
        who = actor or getpass.getuser()
        _show(run(lambda db: act(db, alert_id, "snooze", actor=who, at=clock(), days=days, note=note)))

    @alerts_app.command("resolve")
    def resolve_command(alert_id: int, actor: ActorOption = None, note: NoteOption = None) -> None:
        """Resolve an alert by hand."""
        _show(run(lambda db: act(db, alert_id, "resolve", actor=actor or getpass.getuser(), at=clock(), note=note)))

    @alerts_app.command("feedback")
    def feedback_command(
        alert_id: int,
        verdict: VerdictChoice,
        comment: Annotated[str | None, typer.Option(help="An optional word.")] = None,
        actor: ActorOption = None,
    ) -> None:
        """Mark an alert useful or a false alarm (per-rule precision comes from this)."""
        who = actor or getpass.getuser()
        value: lifecycle.Verdict = "useful" if verdict is VerdictChoice.useful else "false_alarm"
        feedback_id = run(lambda db: feedback(db, alert_id, value, actor=who, at=clock(), comment=comment))
        console.print(f"feedback {feedback_id} recorded")

    @alerts_app.command("stats")
    def stats_command(
        as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    ) -> None:
        """Alerts and feedback per rule; precision = useful / (useful + false alarms)."""
        rows: list[reports.RulePrecision] = run(stats)
        if as_json:
            doc = [r.document() for r in rows]
            typer.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
            return
        table = Table("rule", "alerts", "judged", "useful", "false alarms", "precision")
        for r in rows:
            precision = f"{r.precision:.0%}" if r.precision is not None else "-"
            table.add_row(r.rule, str(r.alerts), str(r.judged), str(r.useful), str(r.false_alarms), precision)
        console.print(table)


def _show(row: dict[str, Any]) -> None:
    console.print(
        f"alert {row['id']}: {row['state']}" + (f" until {row['snoozed_until']}" if row["snoozed_until"] else "")
    )
