"""The hostile corpus (tests/hostile/corpus.jsonl) through every ingress: POST /v1/events one by one, as one JSON
array and as NDJSON, `kamwatch replay`, and the Kafka handler (TestKafkaBroker). Whatever the ingress: no 5xx, no
crash; every good record stored byte for byte as received, every bad one rejected with its field and reason and
dead-lettered with its raw bytes, a same id with other content a conflict; then every account is still rescored
(nothing quarantined), and what was accepted renders: the API, the pages, the widget, Slack and email messages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import hypothesis
import hypothesis.strategies
import pytest
import typer
from faststream.kafka import TestKafkaBroker
from pydantic import SecretStr
from sqlalchemy import text
from typer.testing import CliRunner

from alerts.outbox import Rendered, SendChannel, render_payloads, send_channel
from health_engine.access import create_key
from ingestion.dead_letters import claim_unpublished
from ingestion.parsing import EventRejected, InboundRecord
from ingestion.pipeline import TimeWindow, parse_record
from schemas.events import EARLIEST_INSTANT, LATEST_INSTANT
from services.api.app import build_app
from services.cli import inputs
from services.flows.alerting import build_alerting
from services.flows.evaluation import HealthEngine
from services.flows.ingest import Pipeline
from services.flows.links import NoLinks, UnsignedLinks
from services.platform.database import Database
from services.platform.settings import Settings
from services.worker.consumer import build_broker
from services.worker.dlq import dlq_message
from tests.events import encode, event
from tests.hostile.corpus import NOW, Case, load
from tests.hostile.generated import events

CASES = load()
BYSTANDERS = ("calm-1", "calm-2", "calm-3")
EXPECTED_STATUS = {"accepted": "accepted", "duplicate": "duplicate", "conflict": "conflict", "rejected": "rejected"}


def hostile_settings(settings: Settings) -> Settings:
    # Channels configured, so that alerts are planned and their messages queued (and rendered below).
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "slack_bot_token": SecretStr("xoxb-hostile"),
            "slack_team_channel": "#kam-team",
            "public_url": "https://kamwatch.example.com",
        }
    )


async def bystanders(db: Database, settings: Settings) -> None:
    """Accounts nothing hostile touches: they must still be rescored after the run."""
    kam = {"name": "Zoé", "email": "zoe@example.com", "locale": "en", "timezone": "America/New_York"}
    documents = [event("kam", "kam-calm", NOW - timedelta(days=30), kam, source="calm")]
    for account in BYSTANDERS:
        profile = {"name": account, "owner_kam_id": "kam-calm", "arr": "1000", "currency": "USD", "tier": "key"}
        documents.append(event("account", account, NOW - timedelta(days=30), profile, source="calm"))
        documents.append(event("usage", account, NOW - timedelta(days=2), {"quantity": 3}, source="calm"))
    engine = HealthEngine.from_settings(db, settings, build_alerting(settings, notify="send"))
    await Pipeline(db, clock=lambda: NOW - timedelta(days=1), engine=engine).ingest(
        [encode_record(d) for d in documents], ingress="kafka"
    )


def encode_record(document: dict[str, Any]) -> InboundRecord:
    return InboundRecord(encode(document))


async def fetch(db: Database, query: str) -> list[tuple[Any, ...]]:
    async with db.unit_of_work() as conn:
        return [tuple(row) for row in await conn.execute(text(query))]


async def verify_stored(db: Database, sent: Sequence[Case]) -> None:
    """Good records stored byte for byte; bad ones (and conflicts) dead-lettered with their raw bytes and field."""
    stored = {row[0].encode() for row in await fetch(db, "SELECT payload::text FROM raw_events WHERE source <> 'calm'")}
    assert stored == {c.raw.strip() for c in sent if c.expect == "accepted"}
    letters = await fetch(db, "SELECT raw, field FROM dead_letters")
    lettered = {(bytes(raw), field) for raw, field in letters}
    for case in sent:
        if case.expect == "rejected":
            assert (case.raw.strip() if case.raw.strip() else case.raw, case.field) in lettered or (
                case.raw,
                case.field,
            ) in lettered, case.case
        if case.expect == "conflict":
            assert (case.raw.strip(), "id") in lettered, case.case


async def verify_everyone_rescored(db: Database, settings: Settings) -> None:
    """After the run: the queue drains and a sweep covers every account; nothing set aside."""
    engine = HealthEngine.from_settings(db, settings, build_alerting(settings, notify="send"))
    await engine.rescore_pending(NOW)
    later = NOW + timedelta(hours=1)
    report = await engine.sweep(later, shards=4)
    assert report.shards == 4
    assert await fetch(db, "SELECT account_id, error FROM quarantined_accounts") == []
    health = dict(await fetch(db, "SELECT account_id, as_of FROM account_health"))
    for account in BYSTANDERS:
        assert health[account] == later
    profiles = {row[0] for row in await fetch(db, "SELECT account_id FROM accounts")}
    assert set(health) == profiles


def check_results(sent: Sequence[Case], results: Sequence[dict[str, Any]]) -> None:
    assert len(results) == len(sent)
    for case, result in zip(sent, results, strict=True):
        assert result["status"] == EXPECTED_STATUS[case.expect], (case.case, result)
        if case.expect == "rejected":
            assert result["field"] == case.field, (case.case, result)
            assert result["reason"], case.case


@pytest.fixture
async def app_client(settings: Settings, db: Database) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    configured = hostile_settings(settings)
    await bystanders(db, configured)
    async with db.unit_of_work() as conn:
        key = await create_key(conn, name="hostile", scopes=["admin"], kam_id=None, created_by="tests", at=NOW)
    app = build_app(configured, db, clock=lambda: NOW, key_cache_seconds=0)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        headers = {"Authorization": f"Bearer {key.key}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://kamwatch.test", headers=headers) as http:
            yield http, configured


def ndjson_cases() -> list[Case]:
    return [c for c in CASES if c.raw.strip() and b"\n" not in c.raw and b"\r" not in c.raw]


def array_cases() -> list[Case]:
    chosen = []
    for case in CASES:
        try:
            json.loads(case.raw.decode())  # a JSON value in UTF-8: what an array can hold
        except (ValueError, RecursionError):
            continue
        chosen.append(case)
    return chosen


async def test_one_record_per_request(app_client: tuple[httpx.AsyncClient, Settings], db: Database) -> None:
    http, configured = app_client
    sent = [c for c in CASES if not c.raw.lstrip().startswith(b"[")]  # those are arrays: see the array test
    for case in sent:
        response = await http.post("/v1/events", content=case.raw, headers={"content-type": "application/json"})
        assert response.status_code < 500, (case.case, response.text)
        if case.expect == "rejected":
            assert response.status_code == 422, (case.case, response.text)
            assert response.json().get("field") == case.field, (case.case, response.text)
        elif case.expect == "conflict":
            assert response.status_code == 409, (case.case, response.text)
        else:
            assert response.status_code == 200, (case.case, response.text)
            assert response.json()["results"][0]["status"] == case.expect
    await verify_stored(db, sent)
    await verify_everyone_rescored(db, configured)
    await verify_rendering(http, db, configured)


async def test_one_json_array(app_client: tuple[httpx.AsyncClient, Settings], db: Database) -> None:
    http, configured = app_client
    sent = array_cases()
    body = b"[" + b",\n ".join(c.raw for c in sent) + b"]"
    response = await http.post("/v1/events", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    check_results(sent, response.json()["results"])
    await verify_stored(db, sent)
    await verify_everyone_rescored(db, configured)


async def test_ndjson(app_client: tuple[httpx.AsyncClient, Settings], db: Database) -> None:
    http, configured = app_client
    sent = ndjson_cases()
    body = b"\n".join(c.raw for c in sent)
    response = await http.post("/v1/events", content=body, headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    check_results(sent, response.json()["results"])
    await verify_stored(db, sent)
    await verify_everyone_rescored(db, configured)


def test_kamwatch_replay(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configured = hostile_settings(settings)
    monkeypatch.setenv("KAMWATCH_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("KAMWATCH_DATA_DIR", str(settings.data_dir))
    sent = ndjson_cases()
    events = tmp_path / "hostile.ndjson"
    events.write_bytes(b"\n".join(c.raw for c in sent) + b"\n")
    cli = typer.Typer()
    inputs.register(cli, clock=lambda: NOW)

    async def prepare() -> None:
        db = await Database.open(configured)
        try:
            await bystanders(db, configured)
        finally:
            await db.close()

    asyncio.run(prepare())
    replayed = CliRunner().invoke(cli, ["replay", str(events), "--batch-size", "50"])

    assert replayed.exit_code == 0, replayed.output
    accepted = sum(c.expect == "accepted" for c in sent)
    rejected = sum(c.expect == "rejected" for c in sent)
    assert f"{accepted:,} accepted" in replayed.output
    assert f"{rejected:,} rejected" in replayed.output

    async def check() -> None:
        db = await Database.open(configured)
        try:
            await verify_stored(db, sent)
            await verify_everyone_rescored(db, configured)
        finally:
            await db.close()

    asyncio.run(check())


async def test_kafka_handler(settings: Settings, db: Database) -> None:
    configured = hostile_settings(settings)
    await bystanders(db, configured)
    pipeline = Pipeline(db, clock=lambda: NOW, window=TimeWindow())
    broker = build_broker(
        configured.model_copy(update={"kafka_retry_backoff_s": 0.0}), partial(pipeline.ingest, ingress="kafka")
    )

    sent = list(CASES)
    async with TestKafkaBroker(broker):
        for start in range(0, len(sent), 40):
            await broker.publish_batch(*(c.raw for c in sent[start : start + 40]), topic="kamwatch.usage")

    await verify_stored(db, sent)
    # Rejections and conflicts alike await the DLQ relay (tests/integration/worker/test_kafka_records.py runs
    # it on a real broker), each to go out with its bytes as received.
    async with db.transaction() as conn:
        claimed = await claim_unpublished(conn, limit=len(sent) + 1, lease_s=60)
    outgoing = [dlq_message(c.letter, configured.kafka_dlq_max_bytes)[0] for c in claimed]
    assert sorted(outgoing) == sorted(c.raw for c in sent if c.expect in ("rejected", "conflict"))
    await verify_everyone_rescored(db, configured)


async def verify_rendering(http: httpx.AsyncClient, db: Database, settings: Settings) -> None:
    """What was accepted shows: every account's health, timeline, page and widget; every queued message renders
    for Slack and email."""
    accounts = [row[0] for row in await fetch(db, "SELECT account_id FROM accounts ORDER BY 1")]
    assert len(accounts) > len(BYSTANDERS)
    login = await http.post("/login", data={"key": http.headers["Authorization"].removeprefix("Bearer ")})
    assert login.status_code == 303, login.text
    # the session cookie as set (it is Secure: this client would not send it back over http by itself)
    session = {"cookie": login.headers["set-cookie"].split(";")[0]}
    for account in accounts:
        quoted = "/v1/accounts/" + quote(account, safe="")
        for path in (f"{quoted}/health", f"{quoted}/timeline", f"{quoted}/history"):
            for locale in ("en", "fr"):
                response = await http.get(path, params={"locale": locale})
                assert response.status_code == 200, (account, path, response.text)
        page = await http.get("/accounts/" + quote(account, safe=""), headers=session)
        assert page.status_code == 200, (account, page.text[:300])
        minted = await http.post("/v1/widget-tokens", json={"account_id": account})
        assert minted.status_code == 201, minted.text
        widget = await http.get(httpx.URL(minted.json()["url"]).raw_path.decode())
        assert widget.status_code == 200, (account, widget.text[:300])
    assert (await http.get("/", headers=session)).status_code == 200
    assert (await http.get("/v1/alerts", params={"locale": "fr"})).status_code == 200
    notifications = await fetch(db, "SELECT channel, payload, send_after FROM notifications")
    assert notifications, "the hostile accounts were alerted"
    for channel, payload, send_after in notifications:
        rendered = render_everywhere(payload, send_after, settings.public_url)[send_channel(channel)]
        assert rendered.email is not None or rendered.slack is not None


def render_everywhere(payload: dict[str, Any], now: datetime, base_url: str) -> dict[SendChannel, Rendered]:
    """A queued message rendered for every channel, as the alerter would send it there."""
    return {
        channel: render_payloads(
            [payload], channel, now=now, links=NoLinks() if channel == "team_channel" else UnsignedLinks(base_url)
        )
        for channel in ("email", "slack", "team_channel")
    }


WIDE = TimeWindow(earliest=EARLIEST_INSTANT, max_future=LATEST_INSTANT - EARLIEST_INSTANT)
PROPERTY_KAM = "kam-prop"
PROPERTY_ACCOUNT = "prop-acme"


def aimed(document: Any, at_ours: bool) -> Any:
    """A generated document, its subject (and owner) turned to the seeded KAM and account half the time, so that
    what is generated is also scored, alerted and sent to someone."""
    if not at_ours or not isinstance(document, dict) or not isinstance(document.get("data"), dict):
        return document
    document = {**document, "time": "2026-11-20T10:00:00+05:45"}  # inside the window: scored at NOW
    if document.get("type") == "kamwatch.kam.v1":
        return {**document, "subject": PROPERTY_KAM}
    data = dict(document["data"])
    if document.get("type") == "kamwatch.account.v1":
        data["owner_kam_id"] = PROPERTY_KAM
    return {**document, "subject": PROPERTY_ACCOUNT, "data": data}


@hypothesis.settings(max_examples=60, deadline=None, suppress_health_check=list(hypothesis.HealthCheck), database=None)
@hypothesis.given(document=events(), at_ours=hypothesis.strategies.booleans())
async def test_whatever_the_parser_accepts_is_stored_scored_alerted_and_rendered(
    app_client: tuple[httpx.AsyncClient, Settings], db: Database, document: Any, at_ours: bool
) -> None:
    http, configured = app_client
    seeded = [
        event("kam", PROPERTY_KAM, NOW, {"name": "P", "email": "p@example.com", "timezone": "Asia/Kathmandu"}),
        event(
            "account",
            PROPERTY_ACCOUNT,
            NOW,
            {"name": "P", "owner_kam_id": PROPERTY_KAM, "arr": "5", "currency": "EUR", "tier": "strategic"},
        ),
    ]
    pipeline = Pipeline(db, clock=lambda: NOW, engine=property_engine(db, configured), window=WIDE)
    await pipeline.ingest([encode_record(d) for d in seeded], ingress="http", as_of=NOW)
    raw = json.dumps(aimed(document, at_ours), ensure_ascii=False).encode("utf-8", "surrogatepass")
    parsed = parse_record(InboundRecord(raw), WIDE.at(NOW))
    as_of = max(NOW, parsed.time) + timedelta(days=1) if not isinstance(parsed, EventRejected) else NOW

    result = await pipeline.ingest([InboundRecord(raw)], ingress="http", as_of=as_of)

    [outcome] = result.results
    if isinstance(parsed, EventRejected):
        assert (outcome.status, outcome.field) == ("rejected", parsed.field)
        return
    assert outcome.status in ("accepted", "duplicate", "conflict")
    assert await fetch(db, "SELECT account_id, error FROM quarantined_accounts") == []
    subject = "/v1/accounts/" + quote(parsed.subject, safe="")
    profiled = bool(await fetch(db, f"SELECT 1 FROM accounts WHERE account_id = '{PROPERTY_ACCOUNT}'"))
    for path in (f"{subject}/health", f"{subject}/timeline", f"/v1/accounts/{PROPERTY_ACCOUNT}/health"):
        response = await http.get(path, params={"locale": "fr"})
        assert response.status_code in (200, 404), (path, response.text)
    assert profiled
    page = await http.get(f"/v1/accounts/{PROPERTY_ACCOUNT}/timeline")
    assert page.status_code == 200, page.text
    for _, payload, send_after in await fetch(db, "SELECT channel, payload, send_after FROM notifications"):
        render_everywhere(payload, send_after, configured.public_url)
    assert channel_ok(await fetch(db, "SELECT DISTINCT channel FROM notifications"))


_ENGINES: dict[int, HealthEngine] = {}


def property_engine(db: Database, settings: Settings) -> HealthEngine:
    """One engine per database for the examples of a run (its configuration is read once)."""
    if id(db) not in _ENGINES:
        _ENGINES.clear()
        _ENGINES[id(db)] = HealthEngine.from_settings(db, settings, build_alerting(settings, notify="send"))
    return _ENGINES[id(db)]


def channel_ok(rows: list[tuple[Any, ...]]) -> bool:
    return all(row[0] in ("slack", "email", "team_channel") for row in rows)
