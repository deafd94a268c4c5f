"""The alert rules against outcomes, in memory: the acceptance figures of issue 19 in minutes rather than the hour
of ``bench/alert_volume.py``'s as-lived replay.

Simulates a portfolio, loads its history (through a scratch embedded PostgreSQL), then scores and alerts every
account at every midnight with ``services.tuning.lived`` (what ``kamwatch tune`` and ``kamwatch backtest`` judge
alerts with) and prints the figures of ``alerts.early_warning``, the losses missed by the kind of decline the
simulator planned, and the healthy accounts paged per rule.

    .venv/bin/python bench/alert_rules.py --accounts 2000 --kams 40 --days 540 --seed 42

"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

from alerts.config import load_rules_config
from alerts.early_warning import early_warning, report_lines
from health_engine.config import load_scoring_config
from services.flows.outcome_history import history_of_events
from services.platform.settings import Settings
from services.simulator.generator import AccountPlan, plan_portfolio, write_portfolio
from services.tuning.lived import LivedAlert, replay


def kind_of(plan: AccountPlan) -> str:
    if plan.unannounced_loss:
        return "no signal"
    if plan.quiet:
        return "quiet: " + ", ".join(sorted(plan.signals))
    return "declining" if plan.deteriorating else "ordinary"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--kams", type=int, default=40)
    parser.add_argument("--days", type=int, default=540)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2025, 1, 6))
    parser.add_argument("--scoring", type=Path, help="Scoring YAML (default: the shipped one).")
    parser.add_argument("--rules", type=Path, help="Alert rules YAML (default: the shipped one).")
    args = parser.parse_args()
    scoring, rules = load_scoring_config(args.scoring), load_rules_config(args.rules)

    began = time.perf_counter()
    portfolio = plan_portfolio(args.accounts, args.kams, args.days, args.seed, args.start)
    with tempfile.TemporaryDirectory(prefix="kamwatch-bench-") as scratch:
        summary = write_portfolio(Path(scratch), portfolio)
        history = asyncio.run(history_of_events(Settings(), summary.events_path))
    loaded = time.perf_counter()
    run = replay(history, scoring, rules)
    replayed = time.perf_counter()

    plans = {p.account_id: p for p in portfolio.accounts}
    figures = early_warning(
        run.records(),
        history.outcomes,
        history.accounts,
        end=history.end,
        messages=run.messages,
        digest_only=rules.digest_only_rules(),
        unannounced=[a for a, p in plans.items() if p.unannounced_loss],
    )
    print(
        f"{args.accounts} accounts, {args.kams} KAMs, {args.days} days, seed {args.seed}; "
        f"configs {scoring.version} / {rules.version}; "
        f"simulated and loaded in {loaded - began:.0f} s, replayed in {replayed - loaded:.0f} s"
    )
    print("\n".join(report_lines(figures)))

    by_account: dict[str, list[LivedAlert]] = defaultdict(list)
    for alert in run.alerts:
        by_account[alert.account_id].append(alert)
    missed = Counter(kind_of(plans[account]) for account in figures.missed)
    paged: Counter[str] = Counter()
    for account in history.accounts:
        if (ending := history.outcomes.get(account)) is None or not ending.lost:
            paged.update({a.rule for a in by_account[account] if a.delivery == "immediate"})
    print("losses not alerted early, by the decline planned:", ", ".join(f"{k} {n}" for k, n in missed.most_common()))
    print("accounts never lost paged, by rule (judged or not):", ", ".join(f"{k} {n}" for k, n in paged.most_common()))


if __name__ == "__main__":
    main()
