"""Alert counters follow what the hook wrote to the alerts table."""

from __future__ import annotations

from services.flows.alerting import build_alerting
from services.platform.database import Database
from services.platform.metrics import Metrics
from services.platform.settings import Settings
from tests.integration.scenario import go_critical, rows


async def test_opened_alerts_are_counted_by_rule_and_severity(db: Database, alert_settings: Settings) -> None:
    metrics = Metrics.create()
    await go_critical(db, build_alerting(alert_settings, notify="none", metrics=metrics))
    stored = await rows(db, "SELECT rule, severity, count(*) FROM alerts GROUP BY 1, 2 ORDER BY 1, 2")
    assert stored
    counted = sorted(
        (s.labels["rule"], s.labels["severity"], int(s.value))
        for family in metrics.registry.collect()
        if family.name == "kamwatch_alerts_opened"
        for s in family.samples
        if s.name == "kamwatch_alerts_opened_total" and s.value
    )
    assert counted == stored
