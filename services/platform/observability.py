"""Feeding the metrics: what each ingested batch and each evaluation records, and the gauges sampled from
the database (pool, portfolio, outbox) by every long-running service."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from ingestion.parsing import InboundRecord
from ingestion.pipeline import BatchResult, Ingress
from schemas.vocabulary import AT_RISK_LEVELS
from services.platform.currency import ExchangeRates
from services.platform.database import Database
from services.platform.metrics import UNSENT_STATUSES, Metrics

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 15.0


def channel_of(record: InboundRecord, ingress: Ingress) -> str:
    """The Kafka topic of a record (its origin is ``kafka:TOPIC/PARTITION@OFFSET``), else the ingress."""
    if ingress == "kafka" and record.origin and record.origin.startswith("kafka:"):
        return record.origin[len("kafka:") :].rsplit("/", 1)[0]
    return ingress


def record_batch(
    metrics: Metrics,
    records: Sequence[InboundRecord],
    result: BatchResult,
    *,
    ingress: Ingress,
    seconds: float,
    committed_at: datetime,
) -> None:
    counts: dict[tuple[str, str, str], int] = {}
    for record, outcome in zip(records, result.results, strict=True):
        key = (channel_of(record, ingress), outcome.type or "unknown", outcome.status)
        counts[key] = counts.get(key, 0) + 1
    for (channel, type_, status), count in counts.items():
        metrics.events_total.labels(channel=channel, type=type_, result=status).inc(count)
    if rejected := result.count("rejected"):
        metrics.dead_letters_total.labels(ingress=ingress).inc(rejected)
    metrics.ingest_batch_size.labels(ingress=ingress).observe(len(records))
    metrics.ingest_batch_seconds.labels(ingress=ingress).observe(seconds)
    freshness = metrics.event_freshness_seconds.labels(ingress=ingress)
    for event in result.fresh_events:
        freshness.observe(max(0.0, (committed_at - event.time).total_seconds()))
    if result.fresh_events:
        metrics.last_event_timestamp_seconds.labels(ingress=ingress).set(committed_at.timestamp())


# A closed (churned) account is lost, not at risk, whatever its last score.
_PORTFOLIO_SQL = """
SELECT CASE WHEN s.status = 'closed' THEN 'lost' ELSE h.level END AS level, a.tier, a.currency, count(*) AS accounts,
       coalesce(sum(s.arr), 0) AS arr
FROM account_health h JOIN accounts a USING (account_id) JOIN account_state s USING (account_id)
GROUP BY 1, a.tier, a.currency
"""

_OUTBOX_SQL = "SELECT count(*), min(created_at) FROM notifications WHERE status = 'pending'"
_UNSENT_SQL = (
    "SELECT status, count(*) AS n FROM notifications WHERE status IN ('failed', 'undeliverable') GROUP BY status"
)
_QUARANTINED_SQL = "SELECT count(*) FROM quarantined_accounts"


def arr_at_risk_by_tier(rows: Iterable[Any], rates: ExchangeRates) -> dict[tuple[str, str], float]:
    """ARR of the high and critical accounts by (tier, currency): converted to the reporting currency where a rate
    is known, else kept in its own currency (two currencies are never added)."""
    sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        if row.level in AT_RISK_LEVELS:
            sums[row.tier][row.currency] += Decimal(row.arr)
    found: dict[tuple[str, str], float] = {}
    for tier, by_currency in sums.items():
        total = rates.total(by_currency)
        found[(tier, total.currency)] = float(total.amount)
        for currency, amount in total.unconverted.items():
            found[(tier, currency)] = float(amount)
    return found


async def sample(db: Database, metrics: Metrics, now: datetime, rates: ExchangeRates) -> None:
    """One reading of the database-derived gauges (ARR at risk in the reporting currency of ``rates``)."""
    pool = db.engine.pool
    size, in_use = int(getattr(pool, "size", lambda: 0)()), int(getattr(pool, "checkedout", lambda: 0)())
    metrics.db_pool_size.set(size)
    metrics.db_pool_connections.labels(state="in_use").set(in_use)
    metrics.db_pool_connections.labels(state="idle").set(max(0, size - in_use))
    async with db.unit_of_work() as conn:
        rows = (await conn.execute(text(_PORTFOLIO_SQL))).all()
        pending, oldest = (await conn.execute(text(_OUTBOX_SQL))).one()
        unsent = {row.status: int(row.n) for row in (await conn.execute(text(_UNSENT_SQL))).all()}
        quarantined = (await conn.execute(text(_QUARANTINED_SQL))).scalar_one()
    accounts: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        accounts[(row.level, row.tier)] += int(row.accounts)
    metrics.set_portfolio(accounts, arr_at_risk_by_tier(rows, rates), rates.reporting)
    metrics.outbox_pending.set(int(pending))
    metrics.quarantined_accounts.set(int(quarantined))
    metrics.outbox_oldest_pending_age_seconds.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
    for status in UNSENT_STATUSES:
        metrics.outbox_unsent.labels(status=status).set(unsent.get(status, 0))


async def sample_forever(
    db: Database,
    metrics: Metrics,
    clock: Callable[[], datetime],
    rates: ExchangeRates,
    interval_s: float = SAMPLE_INTERVAL_S,
) -> None:
    while True:
        try:
            await sample(db, metrics, clock(), rates)
        except Exception:  # a failed reading must not stop the service; the next one retries
            log.exception("sampling database gauges failed")
        await asyncio.sleep(interval_s)
