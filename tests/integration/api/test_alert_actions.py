"""Acknowledge, snooze, resolve and feedback through the API, recorded by alerts.repository.lifecycle."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from alerts.repository import lifecycle
from schemas.tables import alert_feedback, alert_transitions, alerts
from services.platform.database import Database
from tests.integration.api.conftest import World
from tests.integration.api.seed import NOW


async def _transitions(db: Database, alert_id: int) -> list[tuple[str | None, str, str, str, str | None]]:
    async with db.unit_of_work() as conn:
        rows = await conn.execute(
            select(
                alert_transitions.c.from_state,
                alert_transitions.c.to_state,
                alert_transitions.c.actor,
                alert_transitions.c.via,
                alert_transitions.c.note,
            )
            .where(alert_transitions.c.alert_id == alert_id)
            .order_by(alert_transitions.c.id)
        )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]


async def test_ack_snooze_resolve(client: httpx.AsyncClient, world: World, db: Database) -> None:
    alert_id = world.alerts["acme"]
    ack = await client.post(f"/v1/alerts/{alert_id}/ack", json={"note": "on it"}, headers=world.auth("lea"))
    ack_again = await client.post(f"/v1/alerts/{alert_id}/ack", headers=world.auth("lea"))
    snooze = await client.post(
        f"/v1/alerts/{alert_id}/snooze?locale=fr", json={"minutes": 60}, headers=world.auth("marc")
    )
    resolve = await client.post(f"/v1/alerts/{alert_id}/resolve", headers=world.auth("admin"))
    after = await client.post(f"/v1/alerts/{alert_id}/ack", headers=world.auth("lea"))

    assert ack.status_code == 200
    assert ack.json()["state"] == "acknowledged"
    assert ack.json()["acknowledged_at"].startswith("2026-11-20T12:00:00")
    assert ack_again.status_code == 200
    assert snooze.json()["snoozed_until"].startswith("2026-11-20T13:00:00")
    assert snooze.json()["title"].startswith("Baisse")
    assert resolve.json()["state"] == "resolved"
    assert resolve.json()["snoozed_until"] is None
    assert after.status_code == 409
    assert await _transitions(db, alert_id) == [
        ("firing", "acknowledged", "kam-lea", "api", "on it"),
        ("acknowledged", "acknowledged", "kam-marc", "api", "snoozed until 2026-11-20T13:00:00+00:00"),
        ("acknowledged", "resolved", "apikey:admin", "api", None),
    ]


async def test_snooze_needs_a_future_time(client: httpx.AsyncClient, world: World) -> None:
    alert_id = world.alerts["acme"]
    missing = await client.post(f"/v1/alerts/{alert_id}/snooze", json={}, headers=world.auth("lea"))
    past = await client.post(
        f"/v1/alerts/{alert_id}/snooze", json={"until": "2026-11-19T00:00:00Z"}, headers=world.auth("lea")
    )
    naive = await client.post(
        f"/v1/alerts/{alert_id}/snooze", json={"until": "2026-11-29T00:00:00"}, headers=world.auth("lea")
    )
    assert (missing.status_code, past.status_code, naive.status_code) == (422, 422, 422)
    assert missing.json()["field"] == past.json()["field"] == "until"


async def test_unknown_alert_is_404(client: httpx.AsyncClient, world: World) -> None:
    assert (await client.post("/v1/alerts/999999/ack", headers=world.auth("admin"))).status_code == 404


async def test_feedback(client: httpx.AsyncClient, world: World, db: Database) -> None:
    response = await client.post(
        f"/v1/alerts/{world.alerts['globex']}/feedback",
        json={"verdict": "false_alarm", "comment": "known outage"},
        headers=world.auth("marc"),
    )
    bad = await client.post(
        f"/v1/alerts/{world.alerts['globex']}/feedback", json={"verdict": "meh"}, headers=world.auth("marc")
    )

    assert response.status_code == 201
    assert response.json()["verdict"] == "false_alarm"
    assert bad.status_code == 422
    assert bad.json()["field"] == "verdict"
    async with db.unit_of_work() as conn:
        row = (await conn.execute(select(alert_feedback))).mappings().one()
    assert (row["actor"], row["verdict"], row["comment"]) == ("kam-marc", "false_alarm", "known outage")


async def test_lifecycle_rules(db: Database, world: World) -> None:
    async with db.transaction() as conn:
        alert_id = world.alerts["initech"]
        with pytest.raises(lifecycle.InvalidTransition):
            await lifecycle.transition(conn, alert_id, "firing", actor="x", via="cli", at=NOW, snoozed_until=NOW)
        with pytest.raises(lifecycle.InvalidTransition):
            await lifecycle.transition(
                conn, alert_id, "acknowledged", actor="x", via="cli", at=NOW, snoozed_until=NOW - timedelta(1)
            )
        with pytest.raises(lifecycle.AlertNotFound):
            await lifecycle.transition(conn, 10**9, "resolved", actor="x", via="cli", at=NOW)
        with pytest.raises(lifecycle.AlertNotFound):
            await lifecycle.record_feedback(conn, 10**9, "useful", actor="x", at=NOW)
        unchanged = await lifecycle.transition(conn, alert_id, "firing", actor="x", via="cli", at=NOW)
        assert unchanged["state"] == "firing"
        acked = await lifecycle.transition(conn, alert_id, "acknowledged", actor="x", via="slack", at=NOW)
        reopened = await lifecycle.transition(conn, alert_id, "firing", actor="kamwatch", via="engine", at=NOW)
        assert (acked["state"], reopened["state"], reopened["acknowledged_at"]) == ("acknowledged", "firing", NOW)
    assert len(await _transitions(db, alert_id)) == 2


async def test_a_clearing_alert_says_so_and_when_it_resolves(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    alert_id = world.alerts["acme"]
    since = NOW - timedelta(days=2)
    async with db.unit_of_work() as conn:
        await conn.execute(
            alerts.update()
            .where(alerts.c.id == alert_id)
            .values(clearing_since=since, resolves_at=since + timedelta(days=14))
        )
    listed = await client.get("/v1/alerts?account_id=acme", headers=world.auth("lea"))
    health = await client.get("/v1/accounts/acme/health", headers=world.auth("lea"))

    def times(a: dict[str, str | None]) -> tuple[datetime | None, ...]:
        return tuple(
            None if (v := a[k]) is None else datetime.fromisoformat(v) for k in ("clearing_since", "resolves_at")
        )

    [item] = [a for a in listed.json()["items"] if a["id"] == alert_id]
    assert item["state"] == "firing"
    assert times(item) == (since, since + timedelta(days=14))
    [shown] = [a for a in health.json()["open_alerts"] if a["id"] == alert_id]
    assert times(shown) == (since, since + timedelta(days=14))
    others = [a for a in listed.json()["items"] if a["id"] != alert_id]
    assert all(times(a) == (None, None) for a in others)
