"""What the health document says about an account's lifecycle and next steps, and how its alerts read.

Shared by ``GET /v1/accounts/{id}/health`` (``lifecycle``, ``next_steps``) and the widget page, from the
single-query health row (``queries.HEALTH_SQL``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from alerts.model import AccountSnapshot
from alerts.phrasing import Reader, alert_headline, driver_line
from alerts.playbook import NextStep, Playbook, step_for_alert, steps_for_account
from schemas.i18n import translate
from schemas.vocabulary import LEVELS, Driver, Locale, driver_from_json


def _moment(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def drivers_of(raw: Any) -> tuple[Driver, ...]:
    """Drivers from their JSON (the ones a reader cannot read are left out)."""
    found = []
    for item in raw or ():
        try:
            found.append(driver_from_json(item))
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(found)


def strongest_drivers(row: Mapping[str, Any], reader: Reader, limit: int) -> list[tuple[Driver, str]]:
    """The account's ``limit`` strongest drivers, each in words at the reader's now (as the messages say them)."""
    ranked = sorted(drivers_of(row.get("drivers")), key=lambda d: (-d.points, d.code))[:limit]
    return [(d, driver_line(d, reader, row["currency"])) for d in ranked]


def is_lost(row: Mapping[str, Any]) -> bool:
    return row.get("lifecycle") == "closed"


def lifecycle_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """``lost`` (churned, with when and why) or ``active``; the outcome that set the ARR and renewal, if any."""
    return {
        "status": "lost" if is_lost(row) else "active",
        "outcome": row.get("outcome"),
        "at": row.get("outcome_at"),
        "reason": row.get("outcome_reason"),
    }


def snapshot_of_row(row: Mapping[str, Any], now: datetime) -> AccountSnapshot | None:
    """The account as alert messages see it (None while it has no score)."""
    level = row.get("level")
    if row.get("risk") is None or level not in LEVELS:
        return None
    renewal = row.get("renewal_date")
    return AccountSnapshot(
        account_id=row["account_id"],
        name=row["name"],
        tier=row["tier"],
        arr=Decimal(row["arr"]),
        currency=row["currency"],
        renewal_date=renewal if isinstance(renewal, date) or renewal is None else date.fromisoformat(str(renewal)),
        owner_kam_id=row.get("owner_kam_id"),
        risk=float(row["risk"]),
        level=level,
        risk_7d_ago=row.get("risk_7d"),
        level_since=_moment(row.get("level_since")),
        drivers=drivers_of(row.get("drivers")),
        as_of=_moment(row.get("as_of")) or now,
    )


def _step_document(step: NextStep, locale: Locale, alert_id: int | None) -> dict[str, Any]:
    return {
        "code": step.code,
        "action": translate(locale, step.action),
        "due_days": step.due_days,
        "due_at": step.due_at,
        "alert_id": alert_id,
    }


def next_steps(row: Mapping[str, Any], playbook: Playbook) -> list[tuple[NextStep, int | None]]:
    """The playbook's step for each open alert (due from when it fired), then for the strongest drivers no alert
    covers; none for a lost account."""
    if is_lost(row):
        return []
    tier = row["tier"]
    drivers = drivers_of(row.get("drivers"))
    found: list[tuple[NextStep, int | None]] = []
    for alert in row.get("open_alerts") or ():
        step = step_for_alert(playbook, drivers_of(alert.get("drivers")), drivers, tier, _moment(alert["fired_at"]))
        if step is not None and all(s.code != step.code for s, _ in found):
            found.append((step, int(alert["id"])))
    for step in steps_for_account(playbook, drivers, tier):
        if all(s.code != step.code for s, _ in found):
            found.append((step, None))
    return found


def next_steps_document(row: Mapping[str, Any], playbook: Playbook, locale: Locale) -> list[dict[str, Any]]:
    return [_step_document(step, locale, alert_id) for step, alert_id in next_steps(row, playbook)]


def alert_headlines(row: Mapping[str, Any], reader: Reader) -> dict[int, str]:
    """Each open alert in words of now (as its notifications word it), by id; its stored title when the account
    has no score."""
    account = snapshot_of_row(row, reader.now)
    found = {}
    for alert in row.get("open_alerts") or ():
        title = alert.get("title_fr" if reader.locale == "fr" else "title_en") or alert.get("rule", "")
        if account is None:
            found[int(alert["id"])] = title
            continue
        found[int(alert["id"])] = alert_headline(alert["rule"], drivers_of(alert.get("drivers")), account, reader)
    return found
