"""From a Kafka record to the KAM's Slack in seconds: `kamwatch worker` scores an idle account's event at once
and `kamwatch alerter` is woken by the immediate notification it queues (its own look is a minute away)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from services.platform.database import Database
from services.platform.settings import Settings
from tests.events import encode, event
from tests.integration.scenario import LEA
from tests.integration.servers import SlackStandIn
from tests.kafka import Record, produce
from tests.processes import kamwatch_service, until

pytestmark = [pytest.mark.kafka, pytest.mark.processes, pytest.mark.xdist_group("kafka")]

STREAMS = {"kam": "accounts", "account": "accounts", "contact_change": "contacts", "usage": "usage"}


def healthy_history(now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """A strategic account with its champion, sponsor and decision maker, used every day until yesterday."""
    start = now - timedelta(days=120)
    profile = {"name": "Acme SA", "owner_kam_id": "kam-lea", "arr": "480000", "currency": "EUR", "tier": "strategic"}
    found = [("kam", event("kam", "kam-lea", start, LEA)), ("account", event("account", "acme", start, profile))]
    for contact, role in (("c1", "champion"), ("c2", "executive_sponsor"), ("c3", "decision_maker")):
        change = {"contact_id": contact, "change": "added", "role": role, "name": f"Contact {contact}"}
        found.append(("contact_change", event("contact_change", "acme", start, change)))
    for day in range(119):
        for user in range(3):
            moment = start + timedelta(days=day, hours=9 + user)
            found.append(("usage", event("usage", "acme", moment, {"quantity": 10, "user_id": f"u{user}"})))
    return found


async def produce_events(settings: Settings, events: list[tuple[str, dict[str, Any]]]) -> None:
    for kind in STREAMS:
        batch = [Record(encode(e), e["subject"].encode()) for k, e in events if k == kind]
        if batch:
            await produce(settings.kafka_bootstrap_servers, settings.kafka_topics[STREAMS[kind]], batch)


async def test_a_champion_leaving_reaches_the_kam_on_slack_in_seconds(
    kafka_settings: Settings, alert_settings: Settings, db: Database, slack: SlackStandIn, tmp_path: Path
) -> None:
    settings = kafka_settings.model_copy(
        update={name: getattr(alert_settings, name) for name in alert_settings.model_fields_set}
        | {"alerter_poll_interval_s": 60.0}
    )
    now = datetime.now(UTC)

    async def scored() -> int:
        async with db.unit_of_work() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM account_health_history"))).scalar_one())

    async def dms() -> list[str]:
        return [str(r.body) for r in slack.requests if r.body.get("channel") == LEA["slack_user_id"]]

    async with (
        kamwatch_service(settings, "worker", stderr=tmp_path / "worker.log"),
        kamwatch_service(settings, "alerter", stderr=tmp_path / "alerter.log") as alerter,
    ):
        await alerter.wait_until_serving()
        await produce_events(settings, healthy_history(now))
        await until(scored, lambda n: n > 0, timeout_s=60, what="the account scored")
        assert await dms() == []  # healthy: nothing to say

        departure = {"contact_id": "c1", "change": "left_company", "role": "champion", "name": "Claire Martin"}
        await produce_events(settings, [("contact_change", event("contact_change", "acme", now, departure))])
        messages = await until(dms, lambda found: len(found) > 0, timeout_s=20, what="a Slack DM to the KAM")
    assert "Claire Martin" in messages[0]
