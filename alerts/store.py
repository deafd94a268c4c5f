"""The stored side of an alert's lifecycle: acknowledge, snooze, resolve, reopen, and feedback.

Thin functions over an open SQLAlchemy connection (the caller's unit of work commits): the API, Slack buttons
and the CLI all go through them, so every state change leaves one row in ``alert_transitions``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import RowMapping, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.tables import alert_feedback, alert_transitions, alerts

StoredState = Literal["firing", "acknowledged", "resolved"]
Via = Literal["engine", "api", "slack", "cli", "widget"]
Verdict = Literal["useful", "false_alarm"]

# Which stored state may follow which: a resolved alert is closed for good (a recurrence opens a new one).
_ALLOWED: dict[str, frozenset[str]] = {
    "firing": frozenset({"firing", "acknowledged", "resolved"}),
    "acknowledged": frozenset({"firing", "acknowledged", "resolved"}),
    "resolved": frozenset(),
}


class AlertNotFound(LookupError):
    """No alert has this id."""


class InvalidTransition(ValueError):
    """The alert cannot go to the requested state (it is resolved, or the request makes no sense)."""


async def get_alert(conn: AsyncConnection, alert_id: int, *, for_update: bool = False) -> RowMapping:
    query = select(alerts).where(alerts.c.id == alert_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().one_or_none()
    if row is None:
        raise AlertNotFound(alert_id)
    return row


async def transition(
    conn: AsyncConnection,
    alert_id: int,
    to_state: StoredState,
    *,
    actor: str,
    via: Via | str,
    at: datetime,
    snoozed_until: datetime | None = None,
    note: str | None = None,
) -> RowMapping:
    """Move an alert to ``to_state`` and record who did it; returns the updated alert.

    - ``acknowledged`` stamps ``acknowledged_at`` (the first time); with ``snoozed_until`` it is a snooze:
      the alert stays open, acknowledged, and notifications wait until then.
    - ``resolved`` stamps ``resolved_at`` and clears any snooze.
    - ``firing`` reopens an acknowledged alert (a snooze that ran out, an ack taken back).
    Repeating the current state without a new snooze changes nothing and records nothing.
    """
    current = await get_alert(conn, alert_id, for_update=True)
    from_state: str = current["state"]
    if to_state not in _ALLOWED[from_state]:
        raise InvalidTransition(f"alert {alert_id} is {from_state}; it cannot become {to_state}")
    if snoozed_until is not None and (to_state != "acknowledged" or snoozed_until <= at):
        raise InvalidTransition("a snooze acknowledges the alert until a time in the future")
    if from_state == to_state and snoozed_until is None:
        return current
    values: dict[str, object] = {"state": to_state, "updated_at": at}
    if to_state == "acknowledged":
        values["acknowledged_at"] = current["acknowledged_at"] or at
        values["snoozed_until"] = snoozed_until
    elif to_state == "resolved":
        values["resolved_at"] = at
        values["snoozed_until"] = None
    else:
        values["snoozed_until"] = None
    updated: RowMapping = (
        (await conn.execute(update(alerts).where(alerts.c.id == alert_id).values(**values).returning(alerts)))
        .mappings()
        .one()
    )
    if snoozed_until is not None and note is None:
        note = f"snoozed until {snoozed_until.isoformat()}"
    await conn.execute(
        insert(alert_transitions).values(
            alert_id=alert_id, at=at, from_state=from_state, to_state=to_state, actor=actor, via=via, note=note
        )
    )
    return updated


async def record_feedback(
    conn: AsyncConnection,
    alert_id: int,
    verdict: Verdict,
    *,
    actor: str,
    at: datetime,
    comment: str | None = None,
) -> int:
    """Keep a KAM's verdict on an alert (was it useful?) for rule tuning; returns the feedback id."""
    await get_alert(conn, alert_id)
    feedback_id: int = (
        await conn.execute(
            insert(alert_feedback)
            .values(alert_id=alert_id, at=at, actor=actor, verdict=verdict, comment=comment)
            .returning(alert_feedback.c.id)
        )
    ).scalar_one()
    return feedback_id
