"""Alerts as people look them up: listings with filters, per-rule precision from feedback, Slack users."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass(frozen=True, slots=True)
class AlertFilters:
    account_id: str | None = None
    rule: str | None = None
    severity: str | None = None
    state: str | None = None
    delivery: str | None = None
    fired_after: datetime | None = None
    fired_before: datetime | None = None
    limit: int | None = None


async def list_alerts(conn: asyncpg.Connection, filters: AlertFilters) -> list[dict[str, Any]]:
    """Alerts with their account name, newest first."""
    rows = await conn.fetch(
        """
        SELECT al.id, al.account_id, ac.name AS account_name, ac.owner_kam_id, al.rule, al.subject, al.severity,
               al.state, al.fired_at, al.delivery, al.folded_into, al.last_notified_at, al.acknowledged_at,
               al.snoozed_until, al.escalated_at, al.clearing_since, al.resolves_at, al.resolved_at,
               al.cleared_note_since, al.cleared_note_at, al.title_en
        FROM alerts al LEFT JOIN accounts ac ON ac.account_id = al.account_id
        WHERE ($1::text IS NULL OR al.account_id = $1) AND ($2::text IS NULL OR al.rule = $2)
          AND ($3::text IS NULL OR al.severity = $3) AND ($4::text IS NULL OR al.state = $4)
          AND ($5::text IS NULL OR al.delivery = $5)
          AND ($6::timestamptz IS NULL OR al.fired_at >= $6) AND ($7::timestamptz IS NULL OR al.fired_at < $7)
        ORDER BY al.fired_at DESC, al.id DESC
        LIMIT $8
        """,
        filters.account_id,
        filters.rule,
        filters.severity,
        filters.state,
        filters.delivery,
        filters.fired_after,
        filters.fired_before,
        filters.limit,
    )
    return [dict(r) for r in rows]


@dataclass(frozen=True, slots=True)
class RulePrecision:
    rule: str
    alerts: int
    judged: int
    useful: int
    false_alarms: int

    @property
    def precision(self) -> float | None:
        return self.useful / self.judged if self.judged else None

    def document(self) -> dict[str, object]:
        """As the API and ``kamwatch alerts stats --json`` give it."""
        return {
            "rule": self.rule,
            "alerts": self.alerts,
            "judged": self.judged,
            "useful": self.useful,
            "false_alarms": self.false_alarms,
            "precision": self.precision,
        }


async def feedback_by_rule(conn: asyncpg.Connection, owners: Collection[str] | None = None) -> list[RulePrecision]:
    """Per rule: alerts, and the KAMs' verdicts from every channel (each alert counted once, by its newest
    verdict); ``owners``: only the accounts these KAMs own (None: all)."""
    rows = await conn.fetch(
        """
        WITH latest AS (
            SELECT DISTINCT ON (alert_id) alert_id, verdict FROM alert_feedback ORDER BY alert_id, at DESC, id DESC
        )
        SELECT al.rule, count(*) AS alerts, count(l.verdict) AS judged,
               count(*) FILTER (WHERE l.verdict = 'useful') AS useful,
               count(*) FILTER (WHERE l.verdict = 'false_alarm') AS false_alarms
        FROM alerts al LEFT JOIN latest l ON l.alert_id = al.id
        WHERE $1::text[] IS NULL
           OR al.account_id IN (SELECT account_id FROM accounts WHERE owner_kam_id = ANY($1::text[]))
        GROUP BY al.rule ORDER BY al.rule
        """,
        sorted(owners) if owners is not None else None,
    )
    return [RulePrecision(r["rule"], r["alerts"], r["judged"], r["useful"], r["false_alarms"]) for r in rows]


async def kam_by_slack_user(conn: asyncpg.Connection, slack_user_id: str) -> str | None:
    kam_id: str | None = await conn.fetchval(
        "SELECT kam_id FROM kams WHERE slack_user_id = $1 ORDER BY kam_id LIMIT 1", slack_user_id
    )
    return kam_id
