"""Backtest metrics: how early and how reliably scores flagged the accounts that later churned or downgraded.

Pure: it takes the scored history and the outcomes as plain values (what the replay produced) and returns
figures. Definitions, per horizon h (days before the outcome):

- **recall@h**: share of churned/downgraded accounts whose risk reached ``high`` or ``critical`` within the
  ``window`` before the outcome and at least h days before it.
- **precision@h**: of the accounts flagged (high or above), the share that churned or downgraded within
  ``window`` days after a flag and at least h days after it (the accounts recall counts as caught, so an
  earlier flag long before does not turn a caught loss into a false alarm). The other flagged accounts are
  false alarms once one of their flags is judged: its ``window`` has passed by the end of the data, or an
  outcome came after it. Flags in the last h days before a loss (too late to count) or after it (a churned
  account goes silent; the labels say nothing beyond the loss) are neither; flags too recent to know (less
  than ``window`` days before the end of the data, with no outcome after them) are left out.
- **median lead time**: days from the first flag (within the window) to the outcome, over flagged losses.
- **ROC AUC@h**: how well the highest risk seen in the window up to h days before the reference time ranks
  losses above the others (reference: the outcome for losses and renewals, the end of the data otherwise).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Outcome = Literal["renewed", "expanded", "downgraded", "churned"]
LOSSES: frozenset[str] = frozenset({"downgraded", "churned"})
FLAGGED_LEVELS: frozenset[str] = frozenset({"high", "critical"})


@dataclass(frozen=True, slots=True)
class ScorePoint:
    as_of: datetime
    risk: float
    level: str


@dataclass(frozen=True, slots=True)
class AccountOutcome:
    time: datetime
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class HorizonReport:
    horizon_days: int
    recall: float | None
    precision: float | None
    median_lead_days: float | None
    auc: float | None
    losses: int
    flagged_losses: int
    flagged: int


def evaluate(
    history: Mapping[str, Sequence[ScorePoint]],
    outcomes: Mapping[str, AccountOutcome],
    *,
    end: datetime,
    horizons: Iterable[int] = (30, 60, 90),
    window_days: int = 180,
) -> list[HorizonReport]:
    """One report per horizon; ``history`` points need not be sorted."""
    window = timedelta(days=window_days)
    ordered = {account: sorted(points, key=lambda p: p.as_of) for account, points in history.items()}
    accounts = set(ordered) | set(outcomes)
    losses = {a for a in accounts if a in outcomes and outcomes[a].outcome in LOSSES}
    reports = []
    for horizon in horizons:
        lead = timedelta(days=horizon)
        caught: set[str] = set()
        leads = []
        for account in losses:
            when = outcomes[account].time
            flags = [
                p.as_of for p in ordered.get(account, ()) if p.level in FLAGGED_LEVELS and when - window <= p.as_of
            ]
            if any(f <= when - lead for f in flags):
                caught.add(account)
                leads.append((when - min(flags)).total_seconds() / 86400)
        true_flags, false_flags = 0, 0
        for account, points in ordered.items():
            if account in caught:
                true_flags += 1
                continue
            outcome = outcomes.get(account)
            loss_time = outcome.time if outcome is not None and outcome.outcome in LOSSES else None
            for flag in (p.as_of for p in points if p.level in FLAGGED_LEVELS):
                if loss_time is not None and flag > loss_time - lead:
                    break  # too late to count at this horizon, or after the loss: not a false alarm either
                if flag + window <= end or (outcome is not None and outcome.time >= flag):
                    false_flags += 1
                    break
        scores_losses: list[float] = []
        scores_others: list[float] = []
        for account in accounts:
            outcome = outcomes.get(account)
            reference = outcome.time if outcome is not None else end
            peak = max(
                (p.risk for p in ordered.get(account, ()) if reference - window <= p.as_of <= reference - lead),
                default=None,
            )
            if peak is None:
                continue
            (scores_losses if account in losses else scores_others).append(peak)
        reports.append(
            HorizonReport(
                horizon_days=horizon,
                recall=len(caught) / len(losses) if losses else None,
                precision=true_flags / (true_flags + false_flags) if true_flags + false_flags else None,
                median_lead_days=statistics.median(leads) if leads else None,
                auc=roc_auc(scores_losses, scores_others),
                losses=len(losses),
                flagged_losses=len(caught),
                flagged=true_flags + false_flags,
            )
        )
    return reports


def roc_auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """Probability that a random positive scores above a random negative (ties count half)."""
    if not positives or not negatives:
        return None
    ranked = sorted([(score, 1) for score in positives] + [(score, 0) for score in negatives])
    rank_sum, index = 0.0, 0
    while index < len(ranked):
        end = index
        while end < len(ranked) and ranked[end][0] == ranked[index][0]:
            end += 1
        average_rank = (index + 1 + end) / 2
        rank_sum += average_rank * sum(label for _, label in ranked[index:end])
        index = end
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
