"""Writing what a notification plan owes, shared by the evaluation's alerting and the escalation check.

``notify`` decides what happens to the planned messages: ``send`` queues them in the outbox for
``kamwatch alerter``, on every channel the policy routed them to from the recipient's contact points (the KAM's
email and Slack id, the team channel): whether a server is configured for a channel is the alerter's business,
not the scoring process's (one it lacks makes the notification visibly undeliverable); ``none`` (replay,
backtest) records the alerts and how they would have been delivered but queues nothing; ``log`` logs the
rendered messages; ``file`` appends them to an NDJSON file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import asyncpg
import orjson

from alerts import compose
from alerts.config import AlertsConfig, PolicyConfig, load_rules_config
from alerts.model import AccountSnapshot, Kam, OpenAlert, OutboxRow
from alerts.outbox import render_payloads, send_channel
from alerts.playbook import Playbook, load_playbook
from alerts.policy import NotificationPlan
from alerts.reconcile import Changes
from alerts.repository import changes as alert_rows
from alerts.repository import queue
from services.flows.links import NoLinks, UnsignedLinks
from services.platform.metrics import Metrics
from services.platform.settings import Settings

log = logging.getLogger(__name__)

NotifyMode = Literal["send", "none", "log", "file"]
NOTIFY_MODES: tuple[NotifyMode, ...] = ("send", "none", "log", "file")
TREND_DAYS = 7
"""A message's trend: the risk now against the risk this many days before."""


def alerts_config(settings: Settings) -> AlertsConfig:
    """The rules YAML, with the team channel of the settings (when set: name, language, time zone) instead of
    the policy's."""
    config = load_rules_config(settings.alert_rules)
    update: dict[str, Any] = {}
    if settings.slack_team_channel:
        update["team_channel"] = settings.slack_team_channel
    if settings.slack_team_channel_locale:
        update["team_channel_locale"] = settings.slack_team_channel_locale
    if settings.slack_team_channel_timezone:
        update["team_channel_timezone"] = settings.slack_team_channel_timezone
    if update:
        policy = PolicyConfig.model_validate(config.policy.model_dump() | update)
        config = config.model_copy(update={"policy": policy})
    return config


def team_channel(config: AlertsConfig) -> compose.TeamChannel:
    return compose.TeamChannel(config.policy.team_channel_locale, config.policy.team_channel_timezone)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one evaluation or escalation check did (returned for tests and logs)."""

    opened: int = 0
    severity_changed: int = 0
    resolved: int = 0
    planned: int = 0
    queued: int = 0
    escalated: int = 0


@dataclass
class Notifier:
    config: AlertsConfig
    notify: NotifyMode
    base_url: str
    file: Path | None = None
    metrics: Metrics | None = None
    playbook: Playbook | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        notify: NotifyMode,
        file: Path | None = None,
        config: AlertsConfig | None = None,
        metrics: Metrics | None = None,
    ) -> Notifier:
        if notify not in NOTIFY_MODES:
            raise ValueError(f"notify must be one of {', '.join(NOTIFY_MODES)}")
        if notify == "file" and file is None:
            raise ValueError('notify="file" needs a file')
        return cls(
            config=config or alerts_config(settings),
            notify=notify,
            base_url=settings.public_url,
            file=file,
            metrics=metrics,
            playbook=load_playbook(settings.playbook),
        )

    async def write(
        self,
        conn: asyncpg.Connection,
        plan: NotificationPlan,
        book: compose.Book,
        snapshots: Mapping[str, AccountSnapshot],
        kams: Mapping[str, Kam],
        as_of: datetime,
    ) -> tuple[int, int]:
        """Record the plan with the alerts (deliveries, cleared notes, escalations) and queue, log or write its
        messages; returns (messages queued, alerts escalated)."""
        await alert_rows.record_cleared_notes(conn, plan.cleared_notes, compose.cleared_note_times(plan))
        await alert_rows.set_deliveries(conn, compose.delivery_updates(plan, book))
        escalated = compose.escalated(plan, book)
        await alert_rows.mark_escalated(conn, escalated, as_of)
        rows = compose.outbox_rows(plan, book, snapshots, kams, as_of, team_channel(self.config))
        if self.notify == "send":
            await queue.enqueue(conn, rows, as_of)
            return len(rows), len(escalated)
        if self.notify in ("log", "file"):
            self._emit(rows)
        return 0, len(escalated)

    def count(self, changes: Changes, open_alerts: Sequence[OpenAlert], plan: NotificationPlan) -> None:
        """Alerts opened, resolved and escalated, by rule and severity (recorded before the commit: a rolled
        back evaluation is counted, and redone)."""
        if self.metrics is None:
            return
        for opened in changes.opened:
            self.metrics.alerts_opened_total.labels(rule=opened.alert.rule, severity=opened.alert.severity).inc()
        by_id = {a.alert_id: a for a in open_alerts}
        by_key = {a.dedup_key: a for a in open_alerts}
        for resolved in changes.resolved:
            severity = by_id[resolved.alert_id].severity if resolved.alert_id in by_id else "info"
            self.metrics.alerts_resolved_total.labels(rule=resolved.rule, severity=severity).inc()
        for planned in plan.notifications:
            if planned.kind == "escalation":
                for key in planned.alert_dedup_keys:
                    if (alert := by_key.get(key)) is not None:
                        self.metrics.alerts_escalated_total.labels(rule=alert.rule, severity=alert.severity).inc()

    def _emit(self, rows: Sequence[OutboxRow]) -> None:
        lines = []
        for r in rows:
            channel = send_channel(r.channel)
            links = NoLinks() if channel == "team_channel" else UnsignedLinks(self.base_url)
            rendered = render_payloads([r.payload], channel, now=r.send_after, links=links, playbook=self.playbook)
            doc: dict[str, Any] = {
                "kind": r.kind,
                "format": r.payload.get("format"),
                "channel": r.channel,
                "recipient": r.recipient,
                "to": r.payload.get("to"),
                "send_after": r.send_after.isoformat(),
                "alert_ids": list(r.alert_ids),
            }
            if rendered.email is not None:
                doc["email"] = {"subject": rendered.email.subject, "text": rendered.email.text}
            if rendered.slack is not None:
                doc["slack"] = rendered.slack
            if self.notify == "log":
                subject = rendered.email.subject if rendered.email else (rendered.slack or {}).get("text")
                log.info(
                    "notification %s via %s to %s at %s: %s", r.kind, r.channel, r.recipient, r.send_after, subject
                )
            lines.append(orjson.dumps(doc))
        if self.notify == "file" and self.file is not None and lines:
            with self.file.open("ab") as out:
                out.write(b"\n".join(lines) + b"\n")
