"""``kamwatch backtest``: replay a history as lived into a scratch database and measure how the scores did.

The replay runs with the as-of clock (sweep at every midnight, never a notification); the scored history
and the outcomes then go to the pure ``health_engine.backtest.evaluate``. A candidate config can run in
shadow: it scores the very same inputs at the very same instants, and both reports are printed together.
Each config's scores also feed its alert rules in memory (``services.tuning.lived``: evaluated, held,
folded, paged or put in a digest as the service would), judged by ``alerts.early_warning``.
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

from alerts.config import AlertsConfig
from alerts.early_warning import EarlyWarningFigures, Outcome, early_warning
from alerts.model import Kam
from alerts.repository.changes import load_accounts, load_kams
from health_engine.backtest import AccountOutcome, HorizonReport, ScorePoint, evaluate
from health_engine.config import ScoringConfig
from health_engine.model import AccountProfile, HealthScore
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
from services.tuning.history import ProfileAt
from services.tuning.lived import AccountAlerting, alert_messages

# A simulated history may lie anywhere in the contract's range (a backtest replays it into a scratch database).
SIMULATION_WINDOW = TimeWindow(earliest=EARLIEST_INSTANT, max_future=LATEST_INSTANT - EARLIEST_INSTANT)


@dataclass
class ScoreLog:
    """Every score an engine produced, per account, in memory (the backtest's history)."""

    points: dict[str, list[ScorePoint]] = field(default_factory=lambda: defaultdict(list))

    def add(self, scores: Sequence[HealthScore]) -> None:
        for s in scores:
            self.points[s.account_id].append(ScorePoint(s.as_of, s.risk, s.level))


@dataclass
class AlertLog:
    """One config's alerts, as its scores would have raised them (in memory, beside the replay)."""

    rules: AlertsConfig
    kams: dict[str, Kam]
    accounts: dict[str, AccountAlerting] = field(default_factory=dict)
    owners: set[str] = field(default_factory=set)
    counter: int = 0

    def next_id(self) -> int:
        self.counter += 1
        return self.counter

    def add(self, scores: Sequence[HealthScore], profiles: dict[str, ProfileAt]) -> None:
        for s in sorted(scores, key=lambda s: s.account_id):
            at = profiles.get(s.account_id)
            if at is None:
                continue
            if at.owner_kam_id is not None:
                self.owners.add(at.owner_kam_id)
            state = self.accounts.get(s.account_id)
            if state is None:
                state = AccountAlerting(s.account_id, self.rules, self.kams, self.next_id)
                self.accounts[s.account_id] = state
            state.observe(s, at)

    def figures(
        self, outcomes: dict[str, AccountOutcome], accounts: Sequence[str], end: datetime, start: datetime
    ) -> EarlyWarningFigures:
        states = list(self.accounts.values())
        weeks = (end - start).total_seconds() / (7 * 86400)
        messages = alert_messages(states, self.kams, self.rules, len(self.owners) * weeks)
        return early_warning(
            [a.record() for s in states for a in s.alerts],
            {a: Outcome(o.time, o.outcome) for a, o in outcomes.items()},
            accounts,
            end=end,
            messages=messages,
            digest_only=self.rules.digest_only_rules(),
        )


@dataclass(frozen=True, slots=True)
class BacktestResult:
    config_version: str
    reports: list[HorizonReport]
    accounts: int
    replay: ReplayStats
    end: datetime
    alerts: EarlyWarningFigures | None = None
    rules_version: str | None = None


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
    rules: AlertsConfig | None = None,
    candidate_rules: AlertsConfig | None = None,
) -> list[BacktestResult]:
    """Replay ``events`` as lived; one result for ``config`` and, when given, one for ``candidate``. With
    ``rules``, each result also holds the alert figures of those rules (``candidate_rules`` for the candidate,
    default ``rules``) fed with that config's scores."""
    primary, shadow = ScoreLog(), ScoreLog()
    kams: dict[str, Kam] = {}
    alert_logs = (
        AlertLog(rules, kams) if rules is not None else None,
        AlertLog(candidate_rules or rules, kams) if rules is not None and candidate is not None else None,
    )

    async def record(conn: asyncpg.Connection, scores: Sequence[HealthScore], as_of: datetime) -> None:
        primary.add(scores)
        shadow_scores: list[HealthScore] = []
        if candidate is not None:
            signals = await load_signals(conn, [s.account_id for s in scores], as_of, engine.windows)
            shadow_scores = [score_account(signals[a], as_of, candidate) for a in sorted(signals)]
            shadow.add(shadow_scores)
        if rules is not None:
            ids = sorted({s.account_id for s in scores})
            rows = await load_accounts(conn, ids)
            missing = sorted({r.owner_kam_id for r in rows.values() if r.owner_kam_id} - set(kams))
            if missing:
                kams.update(await load_kams(conn, missing))
            profiles = {
                a: ProfileAt(
                    as_of, AccountProfile(a, r.tier, r.arr, r.renewal_date), r.owner_kam_id, r.name, r.currency
                )
                for a, r in rows.items()
            }
            for log, batch in zip(alert_logs, (scores, shadow_scores), strict=True):
                if log is not None:
                    log.add(batch, profiles)

    async with scratch_database(settings) as db:
        engine = HealthEngine(db, config, on_scores=record)
        stats = await replay_as_lived(
            Pipeline(db, window=SIMULATION_WINDOW), engine, events, batch_size=settings.ingest_batch_size
        )
        async with db.transaction() as conn:
            labels = read_outcomes(outcomes) if outcomes else await stored_outcomes(conn)
            start, end = await conn.fetchrow("SELECT min(event_time), max(event_time) FROM raw_events")
            accounts = [r[0] for r in await conn.fetch("SELECT account_id FROM accounts")]
    results = []
    for cfg, log, alert_log in ((config, primary, alert_logs[0]), (candidate, shadow, alert_logs[1])):
        if cfg is None:
            continue
        reports = evaluate(log.points, labels, end=end, horizons=horizons)
        figures = alert_log.figures(labels, accounts, end, start) if alert_log is not None else None
        version = alert_log.rules.version if alert_log is not None else None
        results.append(BacktestResult(cfg.version, reports, len(log.points), stats, end, figures, version))
    return results


def alert_figures_json(f: EarlyWarningFigures) -> dict[str, Any]:
    return {
        "accounts": f.accounts,
        "losses": f.losses,
        "losses_alerted_early": f.losses_alerted_early,
        "recall": f.recall,
        "median_lead_days": f.median_lead_days,
        "healthy": f.healthy,
        "healthy_alerted_share": f.healthy_alerted_share,
        "healthy_paged_share": f.healthy_paged_share,
        "immediate_per_kam_week": f.immediate_per_kam_week,
        "digests_per_kam_week": f.digests_per_kam_week,
        "rules": [
            {
                "rule": r.rule,
                "alerts": r.alerts,
                "immediate": r.immediate,
                "judged": r.judged,
                "precision": r.precision,
                "losses_caught": r.losses_caught,
                "losses_only": r.losses_only,
                "digest_only": r.digest_only,
            }
            for r in f.rules
        ],
    }


def results_json(results: Sequence[BacktestResult]) -> dict[str, Any]:
    return {
        "end": results[0].end.isoformat() if results else None,
        "events": results[0].replay.lines if results else 0,
        "configs": [
            {
                "config_version": r.config_version,
                "rules_version": r.rules_version,
                "alerts": alert_figures_json(r.alerts) if r.alerts is not None else None,
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
