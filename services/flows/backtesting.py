"""``kamwatch backtest``: replay a history as lived into a scratch database and measure how the scores did.

The replay runs with the as-of clock (sweep at every midnight, never a notification); the scored history
and the outcomes then go to the pure ``health_engine.backtest.evaluate``. A candidate config can run in
shadow: it scores the very same inputs at the very same instants, and both reports are printed together.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from health_engine.backtest import AccountOutcome, HorizonReport, ScorePoint, evaluate
from health_engine.config import ScoringConfig
from health_engine.model import HealthScore
from health_engine.repository import load_signals
from health_engine.scoring import score_account
from ingestion.parsing import parse_event
from ingestion.pipeline import TimeWindow
from schemas.events import EARLIEST_INSTANT, LATEST_INSTANT, OutcomeEvent
from services.flows.evaluation import HealthEngine
from services.flows.ingest import Pipeline
from services.flows.replay import ReplayStats, replay_as_lived
from services.platform.database import Database, start_embedded
from services.platform.settings import Settings

# A simulated history may lie anywhere in the contract's range (a backtest replays it into a scratch database).
SIMULATION_WINDOW = TimeWindow(earliest=EARLIEST_INSTANT, max_future=LATEST_INSTANT - EARLIEST_INSTANT)


@dataclass
class ScoreLog:
    """Every score an engine produced, per account, in memory (the backtest's history)."""

    points: dict[str, list[ScorePoint]] = field(default_factory=lambda: defaultdict(list))

    def add(self, scores: Sequence[HealthScore]) -> None:
        for s in scores:
            self.points[s.account_id].append(ScorePoint(s.as_of, s.risk, s.level))


@dataclass(frozen=True, slots=True)
class BacktestResult:
    config_version: str
    reports: list[HorizonReport]
    accounts: int
    replay: ReplayStats
    end: datetime


@asynccontextmanager
async def scratch_database(settings: Settings) -> AsyncIterator[Database]:
    """A throw-away embedded PostgreSQL, migrated, removed afterwards."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="backtest-", dir=settings.data_dir))
    url, server = start_embedded(workdir / "pgdata")
    db = await Database.open(settings.model_copy(update={"database_url": url}))
    try:
        await db.migrate()
        yield db
    finally:
        await db.close()
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def read_outcomes(path: Path) -> dict[str, AccountOutcome]:
    """The first loss (churn or downgrade) of each account, else its first outcome."""
    found: dict[str, AccountOutcome] = {}
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        event = parse_event(line)
        if isinstance(event, OutcomeEvent):
            _keep(found, event.subject, AccountOutcome(event.time, event.data.outcome))
    return found


def _keep(found: dict[str, AccountOutcome], account: str, outcome: AccountOutcome) -> None:
    known = found.get(account)
    is_loss = outcome.outcome in ("churned", "downgraded")
    known_loss = known is not None and known.outcome in ("churned", "downgraded")
    if known is None or (is_loss and not known_loss) or (is_loss == known_loss and outcome.time < known.time):
        found[account] = outcome


async def stored_outcomes(conn: asyncpg.Connection) -> dict[str, AccountOutcome]:
    found: dict[str, AccountOutcome] = {}
    for row in await conn.fetch("SELECT account_id, event_time, outcome FROM outcomes ORDER BY event_time"):
        _keep(found, row["account_id"], AccountOutcome(row["event_time"], row["outcome"]))
    return found


async def run_backtest(
    settings: Settings,
    events: Path,
    *,
    config: ScoringConfig,
    candidate: ScoringConfig | None = None,
    outcomes: Path | None = None,
    horizons: Sequence[int] = (30, 60, 90),
) -> list[BacktestResult]:
    """Replay ``events`` as lived; one result for ``config`` and, when given, one for ``candidate``."""
    primary, shadow = ScoreLog(), ScoreLog()

    async def record(conn: asyncpg.Connection, scores: Sequence[HealthScore], as_of: datetime) -> None:
        primary.add(scores)
        if candidate is not None:
            signals = await load_signals(conn, [s.account_id for s in scores], as_of, engine.windows)
            shadow.add([score_account(signals[a], as_of, candidate) for a in sorted(signals)])

    async with scratch_database(settings) as db:
        engine = HealthEngine(db, config, on_scores=record)
        stats = await replay_as_lived(
            Pipeline(db, window=SIMULATION_WINDOW), engine, events, batch_size=settings.ingest_batch_size
        )
        async with db.transaction() as conn:
            labels = read_outcomes(outcomes) if outcomes else await stored_outcomes(conn)
            end = await conn.fetchval("SELECT max(event_time) FROM raw_events")
    results = []
    for cfg, log in ((config, primary), (candidate, shadow)):
        if cfg is None:
            continue
        reports = evaluate(log.points, labels, end=end, horizons=horizons)
        results.append(BacktestResult(cfg.version, reports, len(log.points), stats, end))
    return results


def results_json(results: Sequence[BacktestResult]) -> dict[str, Any]:
    return {
        "end": results[0].end.isoformat() if results else None,
        "events": results[0].replay.lines if results else 0,
        "configs": [
            {
                "config_version": r.config_version,
                "accounts": r.accounts,
                "horizons": [
                    {
                        "horizon_days": h.horizon_days,
                        "recall": h.recall,
                        "precision": h.precision,
                        "median_lead_days": h.median_lead_days,
                        "auc": h.auc,
                        "losses": h.losses,
                        "flagged_losses": h.flagged_losses,
                        "flagged": h.flagged,
                    }
                    for h in r.reports
                ],
            }
            for r in results
        ],
    }


def dumps(results: Sequence[BacktestResult]) -> str:
    return orjson.dumps(results_json(results), option=orjson.OPT_INDENT_2).decode()
