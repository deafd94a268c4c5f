"""Metrics fed by the real worker path (TestKafkaBroker), the engine and the database sampler."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

from faststream.kafka import TestKafkaBroker
from prometheus_client.parser import text_string_to_metric_families

from health_engine.config import load_scoring_config
from services.flows.evaluation import HealthEngine
from services.flows.ingest import Pipeline
from services.platform.currency import ExchangeRates
from services.platform.database import Database
from services.platform.metrics import Metrics
from services.platform.observability import sample
from services.platform.settings import Settings
from services.worker.consumer import build_broker
from tests.configs import SCORING_PATH
from tests.events import at, encode, event

ACCOUNT = event(
    "account", "acme", at(1), {"name": "Acme", "owner_kam_id": "k1", "arr": "250000", "currency": "EUR", "tier": "key"}
)
NOW = datetime(2026, 3, 20, tzinfo=UTC)


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, _ = metrics.exposition()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


async def test_a_kafka_batch_feeds_ingestion_engine_and_faststream_metrics(settings: Settings, db: Database) -> None:
    metrics = Metrics.create()
    engine = HealthEngine(db, load_scoring_config(SCORING_PATH), metrics=metrics)
    pipeline = Pipeline(db, clock=lambda: NOW, engine=engine, metrics=metrics)
    broker = build_broker(settings, partial(pipeline.ingest, ingress="kafka"), metrics)
    async with TestKafkaBroker(broker):
        await broker.publish_batch(encode(ACCOUNT), b"{not json", topic="kamwatch.accounts")
    found = samples(metrics)

    def value(name: str, **labels: str) -> float:
        return found[(name, frozenset(labels.items()))]

    accepted = {"channel": "kamwatch.accounts", "type": "kamwatch.account.v1", "result": "accepted"}
    assert value("kamwatch_events_total", **accepted) == 1
    assert value("kamwatch_events_total", channel="kamwatch.accounts", type="unknown", result="rejected") == 1
    assert value("kamwatch_dead_letters_total", ingress="kafka") == 1
    assert value("kamwatch_ingest_batch_size_count", ingress="kafka") == 1
    assert value("kamwatch_ingest_batch_size_sum", ingress="kafka") == 2
    freshness = (NOW - at(1)).total_seconds()
    assert value("kamwatch_event_freshness_seconds_sum", ingress="kafka") == freshness
    assert value("kamwatch_last_event_timestamp_seconds", ingress="kafka") == NOW.timestamp()
    assert value("kamwatch_rescored_accounts_total", trigger="event") == 1
    assert value("kamwatch_rescore_seconds_count") == 1
    assert any(name.startswith("faststream_received_messages") for name, _ in found)

    await engine.sweep(NOW, shards=2)
    await sample(db, metrics, NOW, ExchangeRates("EUR"))
    found = samples(metrics)
    assert value("kamwatch_sweep_accounts_total") == 1
    assert value("kamwatch_sweep_last_success_timestamp_seconds") == NOW.timestamp()
    [level] = [dict(labels)["level"] for (name, labels), v in found.items() if name == "kamwatch_accounts" and v == 1]
    assert value("kamwatch_accounts", level=level, tier="key") == 1
    expected_at_risk = 250000.0 if level in ("high", "critical") else 0.0
    assert value("kamwatch_arr_at_risk", tier="key", currency="EUR") == expected_at_risk
    assert value("kamwatch_outbox_pending") == 0
    assert value("kamwatch_db_pool_size") == settings.db_pool_size
