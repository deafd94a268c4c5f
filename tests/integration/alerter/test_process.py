"""`kamwatch alerter` as a process: its /metrics, /healthz and /readyz answer on KAMWATCH_METRICS_PORT, and a
notification due at once reaches it without waiting for its next look at the outbox."""

from __future__ import annotations

import pytest

from services.flows.alerting import build_alerting
from services.platform.database import Database
from services.platform.settings import Settings
from tests.integration.scenario import go_critical
from tests.integration.servers import SlackStandIn
from tests.processes import kamwatch_service, until

pytestmark = pytest.mark.processes


async def test_the_alerter_serves_its_metrics_and_probes(settings: Settings) -> None:
    async with kamwatch_service(settings, "alerter") as alerter:
        await alerter.wait_until_serving()
        metrics = await alerter.client.get("/metrics")
        ready = await alerter.client.get("/readyz")
        alive = await alerter.client.get("/healthz")
    assert metrics.status_code == 200
    assert "kamwatch_outbox_pending" in metrics.text
    assert 'kamwatch_notifications_total{channel="email",result="sent"}' in metrics.text
    assert alive.status_code == 200
    assert ready.status_code == 200


async def test_a_notification_due_at_once_wakes_the_sleeping_alerter(
    db: Database, alert_settings: Settings, slack: SlackStandIn
) -> None:
    # The alerter looks at the outbox every minute at most: what comes sooner came from the outbox's NOTIFY.
    settings = alert_settings.model_copy(update={"alerter_poll_interval_s": 60.0})
    hook = build_alerting(settings, notify="send")

    async def accounts_on_slack() -> set[str]:
        return {account for account in ("acme", "globex") for r in slack.requests if account in str(r.body)}

    async with kamwatch_service(settings, "alerter") as alerter:
        await alerter.wait_until_serving()
        await go_critical(db, hook, "acme")
        await until(accounts_on_slack, lambda found: found == {"acme"}, timeout_s=20, what="messages")
        await go_critical(db, hook, "globex")  # while the alerter sleeps, after sending acme's
        await until(accounts_on_slack, lambda found: found == {"acme", "globex"}, timeout_s=20, what="messages")
