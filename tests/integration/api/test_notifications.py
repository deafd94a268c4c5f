"""GET /v1/notifications and POST /v1/notifications/retry: what the alerter gave up on, for admins only."""

from __future__ import annotations

import httpx

from alerts.messages import AlertItem, AlertMessage
from alerts.model import OutboxRow
from alerts.outbox import message_payload
from alerts.repository import queue as outbox
from services.platform.database import Database
from tests.integration.api.conftest import World
from tests.integration.api.seed import NOW
from tests.integration.scenario import rows
from tests.unit.alerts.helpers import snapshot


async def _given_up(db: Database) -> tuple[int, int]:
    item = AlertItem(1, "acme:usage_drop", "usage_drop", "warning", "Usage down", "Usage en baisse", NOW)
    payload = message_payload(AlertMessage("immediate", snapshot(), (item,)), to="U1", locale="en", timezone="UTC")
    queued = [OutboxRow("immediate", "slack", "kam-lea", "kam-lea", (1,), payload, NOW) for _ in range(2)]
    async with db.transaction() as conn:
        undeliverable, failed = await outbox.enqueue(conn, queued, NOW)
        await outbox.record_attempt(
            conn, [undeliverable], NOW, error="undeliverable: x", retry_at=None, undeliverable=True
        )
        await outbox.record_attempt(conn, [failed], NOW, error="OSError: down", retry_at=None)
    return undeliverable, failed


async def test_admins_list_and_retry_what_was_given_up_on(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    undeliverable, failed = await _given_up(db)
    listed = await client.get("/v1/notifications", headers=world.auth("admin"))
    assert listed.status_code == 200
    assert [(n["id"], n["status"]) for n in listed.json()["items"]] == [
        (undeliverable, "undeliverable"),
        (failed, "failed"),
    ]
    only = await client.get("/v1/notifications", params={"status": "failed"}, headers=world.auth("admin"))
    assert [n["id"] for n in only.json()["items"]] == [failed]

    retried = await client.post(
        "/v1/notifications/retry", json={"status": "undeliverable"}, headers=world.auth("admin")
    )
    assert retried.status_code == 200
    assert retried.json() == {"retried": [undeliverable]}
    again = await client.post(
        "/v1/notifications/retry", json={"ids": [undeliverable, failed]}, headers=world.auth("admin")
    )
    assert again.json() == {"retried": [failed]}
    assert await rows(db, "SELECT DISTINCT status, send_after FROM notifications") == [("pending", NOW)]


async def test_only_admins(client: httpx.AsyncClient, world: World) -> None:
    for who in ("all", "lea", "ingest"):
        assert (await client.get("/v1/notifications", headers=world.auth(who))).status_code == 403
        posted = await client.post("/v1/notifications/retry", json={}, headers=world.auth(who))
        assert posted.status_code == 403
    assert (await client.get("/v1/notifications")).status_code == 401
