"""A portfolio's history and outcomes, loaded into memory for ``kamwatch tune`` (``services.tuning``).

From a kamwatch database (the company's own, or a scratch one an events file was replayed into): every
account's signals as they stand at the end of the data, its CRM profile over time (from the raw
``kamwatch.account.v1`` events still kept), the KAMs, the outcomes and when lost accounts closed.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from alerts.early_warning import Outcome
from alerts.repository.changes import load_kams
from health_engine.config import Windows
from health_engine.model import AccountProfile
from health_engine.repository import load_signals
from services.flows.backtesting import scratch_database, stored_outcomes
from services.flows.ingest import Pipeline
from services.flows.replay import replay_file
from services.platform.database import Database
from services.platform.settings import Settings
from services.tuning.history import AccountHistory, History, ProfileAt

_EVERYTHING = Windows(usage_days=100_000, ticket_days=100_000, invoice_days=100_000, engagement_days=100_000)

_PROFILES_SQL = """
SELECT subject, event_time, payload FROM raw_events WHERE type = 'kamwatch.account.v1'
ORDER BY subject, event_time, event_id
"""


class EmptyHistory(Exception):
    """No account with a profile, or no event at all: nothing to learn from."""


async def load_history(conn: asyncpg.Connection) -> History:
    """The whole history the database holds (inside the caller's transaction)."""
    start, end = await conn.fetchrow("SELECT min(event_time), max(event_time) FROM raw_events")
    if start is None:
        raise EmptyHistory("the database holds no event")
    ids = [r["account_id"] for r in await conn.fetch("SELECT account_id FROM accounts ORDER BY 1")]
    signals = await load_signals(conn, ids, end, _EVERYTHING)
    timelines: dict[str, list[ProfileAt]] = defaultdict(list)
    for row in await conn.fetch(_PROFILES_SQL):
        data = _data(row["payload"])
        renewal = data.get("renewal_date")
        profile = AccountProfile(
            row["subject"],
            data["tier"],
            Decimal(str(data["arr"])),
            date.fromisoformat(renewal) if renewal else None,
            data.get("industry"),
        )
        at = ProfileAt(row["event_time"], profile, data.get("owner_kam_id"), data.get("name") or "", data["currency"])
        timelines[row["subject"]].append(at)
    accounts = {a: AccountHistory.of(s, timelines[a]) for a, s in signals.items() if timelines.get(a)}
    if not accounts:
        raise EmptyHistory("no account has a kamwatch.account.v1 profile")
    kam_ids = [r["kam_id"] for r in await conn.fetch("SELECT kam_id FROM kams ORDER BY 1")]
    kams = await load_kams(conn, kam_ids)
    outcomes = {a: Outcome(o.time, o.outcome) for a, o in (await stored_outcomes(conn)).items() if a in accounts}
    closed_at = {
        r["account_id"]: r["outcome_at"]
        for r in await conn.fetch("SELECT account_id, outcome_at FROM account_state WHERE status = 'closed'")
        if r["account_id"] in accounts
    }
    return History(start, end, accounts, kams, outcomes, closed_at=closed_at)


def _data(payload: Any) -> dict[str, Any]:
    document = orjson.loads(payload) if isinstance(payload, str | bytes) else payload
    data: dict[str, Any] = document["data"]
    return data


async def history_of_database(db: Database) -> History:
    async with db.transaction() as conn:
        return await load_history(conn)


async def history_of_events(settings: Settings, events: Path) -> History:
    """Replay an events file (plain, not as lived: only the history matters) into a scratch database and load it."""
    async with scratch_database(settings) as db:
        await replay_file(Pipeline(db), events, batch_size=settings.ingest_batch_size)
        return await history_of_database(db)
