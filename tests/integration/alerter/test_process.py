"""`kamwatch alerter` as a process: its /metrics, /healthz and /readyz answer on KAMWATCH_METRICS_PORT."""

from __future__ import annotations

import pytest

from services.platform.settings import Settings
from tests.processes import kamwatch_service

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
