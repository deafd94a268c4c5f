"""``kamwatch alerter``: deliver the notification outbox to Slack and email, and run the escalation check.

Nothing is dropped silently. A failed attempt is retried with backoff for as long as the outage window
(``KAMWATCH_ALERTER_RETRY_WINDOW_S``, from the first failure) before the notification is ``failed``; one this
alerter has no server for, or whose address is not one valid address, is ``undeliverable`` at once. Both are
counted, alerted on (deploy/prometheus/rules.yml) and re-sent by ``kamwatch notifications retry`` or
``POST /v1/notifications/retry``.

Each notification is claimed with ``FOR UPDATE SKIP LOCKED`` in a transaction held open while it is sent and
closed once the attempt is recorded: two alerters never hold the same row, and an alerter killed mid-send
leaves no claim behind (its transaction rolls back, the row stays pending for the next one). The price is
at-least-once in one narrow case: killed after the server accepted the message but before the commit.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.outbox import PayloadError, as_it_stands, read_payloads, render, retry_delay, send_channel
from alerts.playbook import Playbook, load_playbook
from alerts.repository import queue, reports
from alerts.repository.standing import load_standing
from services.alerter.channel import PermanentError, Sender, Undeliverable
from services.alerter.slack import SlackSender
from services.alerter.smtp import EmailSender
from services.flows.escalation import check_escalations
from services.flows.links import LinkMaker
from services.flows.notifying import Notifier
from services.platform.clock import utc_now
from services.platform.database import Database
from services.platform.metrics import Metrics
from services.platform.settings import Settings

log = logging.getLogger(__name__)


def next_attempt_at(
    failing_since: datetime,
    now: datetime,
    attempts: int,
    *,
    window_s: float,
    base_s: float,
    cap_s: float,
    jitter: float,
) -> datetime | None:
    """When to try again after the failed attempt number ``attempts`` at ``now``, in a run of failures that began
    at ``failing_since``; None once the outage window is over (the notification is then failed). The last try
    falls on the window's end, however long the backoff."""
    gives_up_at = failing_since + timedelta(seconds=window_s)
    if now >= gives_up_at:
        return None
    delay = retry_delay(attempts, base_s=base_s, cap_s=cap_s, jitter=jitter)
    return min(now + timedelta(seconds=delay), gives_up_at)


@dataclass
class Alerter:
    """Sends due notifications; ``clock`` and ``jitter`` are injectable so that tests control time."""

    db: Database
    notifier: Notifier
    slack: Sender
    email: Sender
    base_url: str
    retry_window_s: float = 86400.0
    backoff_base_s: float = 30.0
    backoff_cap_s: float = 900.0
    concurrency: int = 4
    clock: Callable[[], datetime] = utc_now
    jitter: Callable[[], float] = random.random
    metrics: Metrics | None = None
    sent: list[int] = field(default_factory=list)
    links: LinkMaker | None = None
    """Signed links for each recipient (None: built from ``db`` and ``base_url`` with the default TTL)."""
    playbook: Playbook | None = None

    def __post_init__(self) -> None:
        if self.links is None:
            self.links = LinkMaker(self.db, self.base_url, timedelta(days=14))

    @classmethod
    def from_settings(
        cls,
        db: Database,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
        metrics: Metrics | None = None,
    ) -> Alerter:
        secret = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
        webhook = settings.slack_webhook_url.get_secret_value() if settings.slack_webhook_url else None
        return cls(
            db=db,
            notifier=Notifier.from_settings(settings, notify="send"),
            slack=SlackSender(secret, settings.slack_api_base_url, webhook, timeout_s=int(settings.smtp_timeout_s)),
            email=EmailSender(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_from,
                username=settings.smtp_username,
                password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
                starttls=settings.smtp_starttls,
                tls=settings.smtp_tls,
                timeout_s=settings.smtp_timeout_s,
                public_url=settings.public_url,
            ),
            base_url=settings.public_url,
            retry_window_s=settings.alerter_retry_window_s,
            backoff_base_s=settings.alerter_backoff_base_s,
            backoff_cap_s=settings.alerter_backoff_cap_s,
            concurrency=settings.alerter_concurrency,
            clock=clock,
            metrics=metrics,
            links=LinkMaker(
                db,
                settings.public_url,
                timedelta(days=settings.notification_link_ttl_days),
                settings.configured_widget_secret,
            ),
            playbook=load_playbook(settings.playbook),
        )

    async def send_one(self) -> bool:
        """Claim, send and record one due notification (a whole digest counts as one); False if none is due."""
        async with self.db.transaction() as conn:
            first = await queue.claim_due(conn, self.clock())
            if first is None:
                return False
            claimed = [first]
            if first.payload.get("format") == "digest":
                claimed += await queue.claim_digest_parts(conn, first)
            ids = [n.id for n in claimed]
            error: str | None = None
            permanent = undeliverable = False
            channel = send_channel(first.channel)
            sender = self.email if first.channel == "email" else self.slack
            try:
                if not sender.configured:  # before rendering: say what is missing, not what failed to render
                    raise Undeliverable(_NOT_CONFIGURED["email" if first.channel == "email" else "slack"])
                # Rendered as things stand now: the accounts' health and the alerts' state at send time, and
                # nothing about an account closed (lost) since the message was queued.
                now = self.clock()
                queued = read_payloads([n.payload for n in claimed])
                current = as_it_stands(queued, await load_standing(conn, queued.account_ids(), queued.alert_ids(), now))
                if current is None:
                    await queue.cancel(conn, ids, "nothing left to tell: the account is closed")
                    self._count(first.channel, "cancelled", len(ids))
                    return True
                assert self.links is not None
                recipient = None if channel == "team_channel" else first.kam_id
                links = await self.links.for_recipient(recipient, now, current.owners())
                rendered = render(current, channel, now=now, links=links, playbook=self.playbook)
                await sender.send(first.channel, str(first.payload.get("to") or first.recipient), rendered, ids)
            except Undeliverable as exc:
                error, permanent, undeliverable = f"undeliverable: {exc}", True, True
            except (PermanentError, PayloadError, KeyError, ValueError) as exc:
                error, permanent = f"{type(exc).__name__}: {exc}", True
            except Exception as exc:  # any transport failure is worth another try
                error = f"{type(exc).__name__}: {exc}"
            now = self.clock()
            retry_at = None
            if error is not None and not permanent:
                retry_at = next_attempt_at(
                    min((n.failing_since for n in claimed if n.failing_since is not None), default=now),
                    now,
                    max(n.attempts for n in claimed) + 1,
                    window_s=self.retry_window_s,
                    base_s=self.backoff_base_s,
                    cap_s=self.backoff_cap_s,
                    jitter=self.jitter(),
                )
            statuses = await queue.record_attempt(
                conn, ids, now, error=error, retry_at=retry_at, undeliverable=undeliverable
            )
        result = "sent" if error is None else (statuses[0] if statuses[0] != "pending" else "retried")
        if error is None:
            self.sent.extend(ids)
        else:
            log.warning("notification %s via %s: %s (%s)", ids, first.channel, error, result)
        self._count(first.channel, result, len(ids))
        return True

    def _count(self, channel: str, result: str, n: int) -> None:
        if self.metrics is not None:
            self.metrics.notifications_total.labels(channel=channel, result=result).inc(n)

    async def run_until_idle(self) -> int:
        """Send everything due now with ``concurrency`` claims in flight; returns the claims processed."""

        async def worker() -> int:
            done = 0
            while await self.send_one():
                done += 1
            return done

        return sum(await asyncio.gather(*(worker() for _ in range(self.concurrency))))

    async def check_escalations(self) -> int:
        """Queue escalations (manager) and reminders (KAM) of overdue critical alerts; returns how many alerts."""
        async with self.db.transaction() as conn:
            outcome = await check_escalations(conn, self.notifier, self.clock())
        return outcome.escalated

    async def sample(self) -> None:
        """Outbox backlog and per-rule feedback precision, for /metrics."""
        if self.metrics is None:
            return
        async with self.db.transaction() as conn:
            pending, age = await queue.outbox_backlog(conn, self.clock())
            unsent = await queue.unsent_counts(conn)
            precision = await reports.feedback_by_rule(conn)
        self.metrics.outbox_pending.set(pending)
        self.metrics.outbox_oldest_pending_age_seconds.set(age)
        for status, count in unsent.items():
            self.metrics.outbox_unsent.labels(status=status).set(count)
        for rule in precision:
            if rule.precision is not None:
                self.metrics.alert_feedback_precision.labels(rule=rule.rule).set(rule.precision)

    async def run_forever(self, *, poll_interval_s: float, escalation_interval_s: float) -> None:
        """Deliver, check escalations every ``escalation_interval_s``; a database hiccup is logged and retried.

        Idle, the alerter waits for the outbox's notification (a notification due at once was queued) or, at
        the latest, ``poll_interval_s`` (retries and digests come due without anyone queuing them)."""
        next_check = self.clock()
        while True:
            try:
                async with self.db.listening(queue.OUTBOX_CHANNEL) as wakeup:
                    while not wakeup.lost:
                        wakeup.clear()  # before looking: what is queued meanwhile wakes the next wait
                        if self.clock() >= next_check:
                            escalated = await self.check_escalations()
                            if escalated:
                                log.info("escalated %d alerts", escalated)
                            await self.sample()
                            next_check = self.clock() + timedelta(seconds=escalation_interval_s)
                        if not await self.run_until_idle():
                            await wakeup.wait(poll_interval_s)
            except Exception:
                log.exception("alerter round failed; retrying")
                await asyncio.sleep(min(poll_interval_s, 5.0))


async def run_alerter(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> None:
    """The ``kamwatch alerter`` process: until stopped, with /metrics on KAMWATCH_METRICS_PORT."""
    from services.platform.metrics import serve_metrics

    missing = [what for what, there in (("Slack", _slack(settings)), ("SMTP", settings.smtp_host)) if not there]
    if missing:
        log.warning("no %s configured: those notifications will be undeliverable", " nor ".join(missing))
    metrics = Metrics.create()
    db = await Database.open(settings)
    server = None
    try:
        await db.migrate()
        server = await serve_metrics(metrics.registry, settings.metrics_host, settings.metrics_port, ready=db.ping)
        alerter = Alerter.from_settings(db, settings, clock=clock, metrics=metrics)
        await alerter.run_forever(
            poll_interval_s=settings.alerter_poll_interval_s,
            escalation_interval_s=settings.alerter_escalation_interval_s,
        )
    finally:
        if server is not None:
            await server.aclose()
        metrics.close()
        await db.close()


_NOT_CONFIGURED = {
    "email": "no SMTP server configured on the alerter (KAMWATCH_SMTP_HOST)",
    "slack": "no Slack configured on the alerter (KAMWATCH_SLACK_BOT_TOKEN or KAMWATCH_SLACK_WEBHOOK_URL)",
}


def _slack(settings: Settings) -> bool:
    return settings.slack_bot_token is not None or settings.slack_webhook_url is not None
