"""Scorer calibration harness: backtest figures for a scoring config in about a minute, not an as-lived replay.

    KAMWATCH_DATA_DIR=/tmp/kw7 .venv/bin/kamwatch replay /tmp/sim7/events.ndjson       # once per history
    KAMWATCH_DATA_DIR=/tmp/kw7 .venv/bin/python bench/calibrate.py load /tmp/kw7.pickle  # once per history
    .venv/bin/python bench/calibrate.py score /tmp/kw7.pickle [/tmp/kw11.pickle …] [--config F] [--step N] [--diagnose]

``load`` reads every account's full signals once (``load_signals`` at the end of the data with windows wide
enough to hold everything), the timeline of each account's CRM profile (renewal date, tier and ARR change
over time: a renewal moves the date a year on) from the raw events, and the outcomes, into a pickle.

``score`` scores every account at every ``--step``-th midnight in pure Python with a config, trimming the
inputs at each instant the way ``load_signals`` would with the config's own windows (the scorer rewinds
snapshots through their own timestamps), then prints ``evaluate``'s figures; ``--diagnose`` adds which
drivers made the false flags and what the missed losses showed.

Approximation: ticket and invoice snapshots are the final ones, so escalation counters and failed payments
count from the ticket's or invoice's last event on (the as-lived replay knows them a few days earlier).
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson

from health_engine.backtest import AccountOutcome, HorizonReport, ScorePoint, evaluate
from health_engine.config import ScoringConfig, Windows, load_scoring_config
from health_engine.model import AccountProfile, AccountSignals, HealthScore
from health_engine.scoring import score_account
from services.tuning.history import AccountHistory, ProfileAt, signals_at

_HUGE = Windows(usage_days=100_000, ticket_days=100_000, invoice_days=100_000, engagement_days=100_000)


@dataclass(frozen=True, slots=True)
class Dataset:
    end: datetime
    signals: dict[str, AccountSignals]
    profiles: dict[str, list[tuple[datetime, AccountProfile]]]
    """Each account's profile from each account event on, in time order."""
    outcomes: dict[str, AccountOutcome]


# --- load ------------------------------------------------------------------------------------------------------


async def _load() -> Dataset:
    from health_engine.repository import load_signals
    from services.flows.backtesting import stored_outcomes
    from services.platform.database import Database
    from services.platform.settings import Settings

    db = await Database.open(Settings())
    try:
        async with db.transaction() as conn:
            end: datetime = await conn.fetchval("SELECT max(event_time) FROM raw_events")
            ids = [r["account_id"] for r in await conn.fetch("SELECT account_id FROM accounts ORDER BY 1")]
            signals = await load_signals(conn, ids, end, _HUGE)
            profiles: dict[str, list[tuple[datetime, AccountProfile]]] = defaultdict(list)
            rows = await conn.fetch(
                "SELECT subject, event_time, payload FROM raw_events WHERE type = 'kamwatch.account.v1' "
                "ORDER BY subject, event_time, event_id"
            )
            for row in rows:
                payload = row["payload"]
                data = orjson.loads(payload)["data"] if isinstance(payload, str) else payload["data"]
                renewal = data.get("renewal_date")
                profiles[row["subject"]].append(
                    (
                        row["event_time"],
                        AccountProfile(
                            row["subject"],
                            data["tier"],
                            Decimal(str(data["arr"])),
                            date.fromisoformat(renewal) if renewal else None,
                            data.get("industry"),
                        ),
                    )
                )
            outcomes = await stored_outcomes(conn)
    finally:
        await db.close()
    return Dataset(end, signals, dict(profiles), outcomes)


# --- score -----------------------------------------------------------------------------------------------------


@dataclass
class Notable:
    """The scores worth a look per account: its first flag, and its peak in the window before a loss."""

    first_flag: HealthScore | None = None
    peak: HealthScore | None = None
    max_points: dict[str, float] = field(default_factory=dict)
    """Highest points of each driver: within the window before a loss, over the whole history otherwise."""


def score_history(
    data: Dataset, config: ScoringConfig, step: int, horizon_days: int = 30, window_days: int = 180
) -> tuple[dict[str, list[ScorePoint]], dict[str, Notable]]:
    """Scores at every ``step``-th midnight UTC, and the notable ones of each account."""
    w = Windows.of(config)
    first = min(t for p in data.profiles.values() for t, _ in p)
    start = datetime.combine(first.astimezone(UTC).date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    instants = []
    moment = start
    while moment <= data.end:
        instants.append(moment)
        moment += timedelta(days=step)
    history: dict[str, list[ScorePoint]] = {}
    notable: dict[str, Notable] = {}
    for account, signals in sorted(data.signals.items()):
        ix = AccountHistory.of(signals, [ProfileAt(t, p, None) for t, p in data.profiles.get(account, [])])
        outcome = data.outcomes.get(account)
        loss = outcome is not None and outcome.outcome in ("churned", "downgraded")
        points, note = [], Notable()
        for as_of in instants:
            at = signals_at(ix, as_of, w)
            if at is None:
                continue
            score = score_account(at, as_of, config)
            points.append(ScorePoint(as_of, score.risk, score.level))
            if note.first_flag is None and score.level in ("high", "critical"):
                note.first_flag = score
            in_window = outcome is not None and outcome.time - timedelta(
                days=window_days
            ) <= as_of <= outcome.time - timedelta(days=horizon_days)
            if in_window and loss and (note.peak is None or score.risk > note.peak.risk):
                note.peak = score
            if in_window or not loss:
                for d in score.drivers:
                    note.max_points[d.code] = max(note.max_points.get(d.code, 0.0), d.points)
                for c in score.components:
                    key = "component." + c.name
                    note.max_points[key] = max(note.max_points.get(key, 0.0), c.risk)
        history[account] = points
        notable[account] = note
    return history, notable


def _fmt(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def print_reports(reports: Sequence[HorizonReport]) -> None:
    print("horizon  recall  precision  AUC    lead  losses flagged_losses flagged")
    for r in reports:
        lead = "-" if r.median_lead_days is None else f"{r.median_lead_days:.0f}"
        print(
            f"{r.horizon_days:>5} d  {_fmt(r.recall)}  {_fmt(r.precision)}      {_fmt(r.auc)}  {lead:>4}  "
            f"{r.losses:>6} {r.flagged_losses:>14} {r.flagged:>7}"
        )


def diagnose(data: Dataset, notable: dict[str, Notable], window_days: int = 180) -> None:
    """False flags: the drivers at the first flag of accounts that did not lose; missed losses: their peak."""
    window = timedelta(days=window_days)
    false_codes: Counter[str] = Counter()
    false_top: Counter[str] = Counter()
    n_false = 0
    loss_top: Counter[str] = Counter()
    missed_codes: Counter[str] = Counter()
    peaks = []
    for account, note in sorted(notable.items()):
        outcome = data.outcomes.get(account)
        loss = outcome is not None and outcome.outcome in ("churned", "downgraded")
        if not loss and note.first_flag is not None:
            n_false += 1
            false_top[note.first_flag.drivers[0].code] += 1
            false_codes.update(d.code for d in note.first_flag.drivers if d.points >= 20)
        if not loss or outcome is None or note.peak is None:
            continue
        peak = note.peak
        if peak.level in ("high", "critical"):
            first = note.first_flag
            if first is not None and first.as_of >= outcome.time - window:
                loss_top[first.drivers[0].code] += 1
            continue
        peaks.append(peak.risk)
        missed_codes.update(d.code for d in peak.drivers if d.points >= 10)
        comps = " ".join(f"{c.name[:4]}={c.risk:.0f}" for c in peak.components)
        top = ", ".join(f"{d.code}:{d.points:.0f}" for d in peak.drivers[:5])
        print(f"  missed {account} {outcome.outcome} peak {peak.risk:.0f} {comps} | {top}")
    print(f"non-loss accounts ever flagged: {n_false}")
    months = Counter(
        n.first_flag.as_of.strftime("%Y-%m") for a, n in notable.items() if n.first_flag and not _loss(data, a)
    )
    print("  month of first flag:", ", ".join(f"{m} {k}" for m, k in sorted(months.items())))
    codes = sorted({c for n in notable.values() for c in n.max_points})
    losses = [n for a, n in notable.items() if _loss(data, a)]
    others = [n for a, n in notable.items() if not _loss(data, a)]
    print(f"share of losses ({len(losses)}, window) / non-losses ({len(others)}, all history) with max points >= x")
    print(f"{'driver':42} {'>=20':>11} {'>=40':>11} {'>=60':>11}")
    for code in codes:
        cells = []
        for x in (20, 40, 60):
            a = sum(1 for n in losses if n.max_points.get(code, 0) >= x) / max(1, len(losses))
            b = sum(1 for n in others if n.max_points.get(code, 0) >= x) / max(1, len(others))
            cells.append(f"{a:.2f}/{b:.2f}")
        print(f"{code:42} {cells[0]:>11} {cells[1]:>11} {cells[2]:>11}")
    print("  top driver at first flag:", ", ".join(f"{c} {n}" for c, n in false_top.most_common(12)))
    print("  drivers >= 20 points then:", ", ".join(f"{c} {n}" for c, n in false_codes.most_common(16)))
    print("flagged losses, top driver at first flag:", ", ".join(f"{c} {n}" for c, n in loss_top.most_common(12)))
    if peaks:
        print(f"missed losses: {len(peaks)}, median peak {statistics.median(peaks):.0f}")
        print("  drivers >= 10 points at their peak:", ", ".join(f"{c} {n}" for c, n in missed_codes.most_common(16)))


def _loss(data: Dataset, account: str) -> bool:
    outcome = data.outcomes.get(account)
    return outcome is not None and outcome.outcome in ("churned", "downgraded")


def _score(args: argparse.Namespace) -> None:
    config = load_scoring_config(Path(args.config) if args.config else None)
    for path in args.data:  # one after the other: decide on several histories (seeds) together, never on one
        data: Dataset = pickle.loads(Path(path).read_bytes())
        started = time.perf_counter()
        history, notable = score_history(data, config, args.step)
        reports = evaluate(history, data.outcomes, end=data.end, horizons=(30, 60, 90))
        print(f"{path} with {config.version}: {len(history)} accounts, {time.perf_counter() - started:.0f} s")
        print_reports(reports)
        if args.diagnose:
            diagnose(data, notable)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    load = sub.add_parser("load", help="read a replayed history from KAMWATCH_DATA_DIR into a pickle")
    load.add_argument("out")
    score = sub.add_parser("score", help="score a pickled history with a config and print the figures")
    score.add_argument("data", nargs="+", help="pickled histories (e.g. one per seed)")
    score.add_argument("--config", help="scoring config YAML (default: the shipped one)")
    score.add_argument("--step", type=int, default=1, help="days between two scores")
    score.add_argument("--diagnose", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "load":
        data = asyncio.run(_load())
        Path(args.out).write_bytes(pickle.dumps(data, protocol=5))
        print(f"{len(data.signals)} accounts, {len(data.outcomes)} outcomes, end {data.end.isoformat()} -> {args.out}")
    else:
        _score(args)


if __name__ == "__main__":
    main()
