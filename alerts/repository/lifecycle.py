"""The stored side of an alert's lifecycle: acknowledge, snooze, resolve, reopen, and feedback.

The API, the pages, Slack buttons and the CLI all go through these, so every state change leaves one row in
``alert_transitions``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import asyncpg

StoredState = Literal["firing", "acknowledged", "resolved"]
Via = Literal["engine", "api", "slack", "cli", "widget", "email", "page"]
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


async def get_alert(conn: asyncpg.Connection, alert_id: int, *, for_update: bool = False) -> dict[str, Any]:
    row = await conn.fetchrow("SELECT * FROM alerts WHERE id = $1" + (" FOR UPDATE" if for_update else ""), alert_id)
    if row is None:
        raise AlertNotFound(alert_id)
    return dict(row)


async def transition(
    conn: asyncpg.Connection,
    alert_id: int,
    to_state: StoredState,
    *,
    actor: str,
    via: Via | str,
    at: datetime,
    snoozed_until: datetime | None = None,
    note: str | None = None,
) -> dict[str, Any]:
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
    acknowledged_at = current["acknowledged_at"] or at if to_state == "acknowledged" else current["acknowledged_at"]
    resolved_at = at if to_state == "resolved" else current["resolved_at"]
    until = snoozed_until if to_state == "acknowledged" else None
    row = await conn.fetchrow(
        "UPDATE alerts SET state = $2, updated_at = $3, acknowledged_at = $4, resolved_at = $5, snoozed_until = $6"
        " WHERE id = $1 RETURNING *",
        alert_id,
        to_state,
        at,
        acknowledged_at,
        resolved_at,
        until,
    )
    assert row is not None  # locked above
    if snoozed_until is not None and note is None:
        note = f"snoozed until {snoozed_until.isoformat()}"
    await conn.execute(
        "INSERT INTO alert_transitions (alert_id, at, from_state, to_state, actor, via, note)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        alert_id,
        at,
        from_state,
        to_state,
        actor,
        via,
        note,
    )
    return dict(row)


async def record_feedback(
    conn: asyncpg.Connection,
    alert_id: int,
    verdict: Verdict,
    *,
    actor: str,
    at: datetime,
    comment: str | None = None,
    via: Via | str | None = None,
) -> int:
    """Keep a KAM's verdict on an alert (was it useful?) for rule tuning, and where it was given; returns the
    feedback id. Each alert counts once in the precision, by its newest verdict."""
    await get_alert(conn, alert_id)
    feedback_id: int = await conn.fetchval(
        "INSERT INTO alert_feedback (alert_id, at, actor, verdict, comment, via) VALUES ($1, $2, $3, $4, $5, $6) "
        "RETURNING id",
        alert_id,
        at,
        actor,
        verdict,
        comment,
        via,
    )
    return feedback_id
