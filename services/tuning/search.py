"""The search behind ``kamwatch tune``: scoring and rule parameters that give the best early recall within an
alert budget, on the tuning half of the accounts; the held-out half only reports.

Optuna's TPE sampler, seeded and run sequentially, so one seed gives one result. Each trial writes a
candidate (scoring and rules configs: the current ones with the searched values), replays the tuning half as
it would have lived (``services.tuning.lived``) and scores it: the objective is the share of losses alerted at
least 30 days ahead (ties: the longer median lead, then fewer healthy accounts alerted), the constraints the
budget. The current configs are the first trial, so the result is never worse than them on the tuning half.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import optuna

from alerts.config import AlertsConfig
from alerts.early_warning import EarlyWarningFigures, early_warning
from health_engine.config import ScoringConfig
from services.tuning.history import History, split_halves
from services.tuning.lived import DriverCache, replay

Target = Literal["scoring", "rules"]


@dataclass(frozen=True, slots=True)
class Budget:
    """What the alerts may cost, on healthy accounts and in KAMs' attention."""

    immediate_per_kam_week: float = 1.0
    digests_per_kam_week: float = 1.0
    healthy_alerted: float = 0.30
    """Share of healthy accounts (never lost nor downgraded) with any alert."""
    healthy_paged: float = 0.03
    """Share of healthy accounts with an immediate alert."""
    rule_precision: float = 0.4
    """A rule that pages must have at least this precision (rules with fewer than ``min_judged`` judged alerts
    are not held to it)."""
    min_judged: int = 10

    NAMES: ClassVar[tuple[str, ...]] = (
        "immediate_per_kam_week",
        "digests_per_kam_week",
        "healthy_alerted",
        "healthy_paged",
        "rule_precision",
    )

    def violations(self, f: EarlyWarningFigures) -> list[float]:
        """One value per constraint, at most 0 when it holds (how far over it is otherwise)."""
        paging = [
            self.rule_precision - r.precision
            for r in f.rules
            if not r.digest_only and r.immediate > 0 and r.judged >= self.min_judged and r.precision is not None
        ]
        return [
            (f.immediate_per_kam_week or 0.0) - self.immediate_per_kam_week,
            (f.digests_per_kam_week or 0.0) - self.digests_per_kam_week,
            (f.healthy_alerted_share or 0.0) - self.healthy_alerted,
            (f.healthy_paged_share or 0.0) - self.healthy_paged,
            max(paging, default=-1.0),
        ]


@dataclass(frozen=True, slots=True)
class Parameter:
    """One searched value: where it sits in a config (``target`` and a dotted ``path``), and its range (``low``
    to ``high``, an integer when ``step`` is 1) or its ``choices``."""

    target: Target
    path: str
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def sample(self, trial: optuna.Trial) -> Any:
        name = f"{self.target}.{self.path}"
        if self.choices:
            return trial.suggest_categorical(name, self.choices)
        if self.step == 1:
            return trial.suggest_int(name, int(self.low), int(self.high))
        return trial.suggest_float(name, self.low, self.high, step=self.step)

    def current(self, candidate: Candidate) -> Any:
        value: Any = candidate.scoring if self.target == "scoring" else candidate.rules.rules
        for part in self.path.split("."):
            value = getattr(value, part)
        return value


# The parameters searched by default: levels and tier weights, the quiet signals' and departures' points and
# the hand-over grace, each rule's threshold and whether it pages. Driver-level values take a few choices
# (each choice is computed once and kept, see DriverCache), the others a range.
SEARCH_SPACE: tuple[Parameter, ...] = (
    Parameter("scoring", "levels.high", 45, 70, step=1),
    Parameter("scoring", "levels.critical", 66, 90, step=1),
    Parameter("scoring", "tiers.strategic.acute_factor", 0.6, 0.95, step=0.05),
    Parameter("scoring", "tiers.key.acute_factor", 0.6, 0.95, step=0.05),
    Parameter("scoring", "tiers.standard.acute_factor", 0.55, 0.95, step=0.05),
    Parameter("scoring", "relationship.successor_grace_days", choices=(7, 10, 14, 21)),
    Parameter("scoring", "relationship.sole_successor_grace_days", choices=(0, 3, 7, 14)),
    Parameter("scoring", "engagement.nps.low", choices=(15.0, 30.0, 45.0)),
    Parameter("rules", "usage_drop.min_points", 25, 70, step=5),
    Parameter("rules", "usage_slide.min_points", 20, 60, step=5),
    Parameter("rules", "ticket_surge.min_points", 25, 70, step=5),
    Parameter("rules", "urgent_ticket_open.min_points", 35, 70, step=5),
    Parameter("rules", "payment_late.min_points", 30, 80, step=5),
    Parameter("rules", "payment_failed.min_points", 25, 70, step=5),
    Parameter("rules", "business_review_missed.min_points", 15, 55, step=5),
    Parameter("rules", "nps_detractor.min_points", 15, 75, step=5),
    Parameter("rules", "new_executive_unengaged.min_points", 0, 45, step=5),
    Parameter("rules", "champion_left.compound_level", choices=("high", "critical")),
    Parameter("rules", "sponsor_left.compound_level", choices=("high", "critical")),
    Parameter("rules", "decision_maker_left.compound_level", choices=("high", "critical")),
    Parameter("rules", "usage_drop.for_days", choices=(0.0, 7.0, 14.0, 21.0)),
    Parameter("rules", "risk_level.for_days", choices=(0.0, 7.0, 14.0)),
    Parameter("rules", "ticket_surge.for_days", choices=(0.0, 7.0, 14.0)),
    Parameter("rules", "payment_late.for_days", choices=(0.0, 14.0, 30.0)),
    Parameter("rules", "nps_detractor.for_days", choices=(0.0, 14.0, 30.0)),
    Parameter("rules", "business_review_missed.for_days", choices=(0.0, 14.0, 30.0)),
    Parameter("rules", "risk_jump.enabled", choices=(True, False)),
    Parameter("rules", "usage_drop.enabled", choices=(True, False)),
    Parameter("rules", "usage_slide.enabled", choices=(True, False)),
    Parameter("rules", "ticket_surge.enabled", choices=(True, False)),
    Parameter("rules", "urgent_ticket_open.enabled", choices=(True, False)),
    Parameter("rules", "payment_late.enabled", choices=(True, False)),
    Parameter("rules", "business_review_missed.enabled", choices=(True, False)),
    Parameter("rules", "nps_detractor.enabled", choices=(True, False)),
    Parameter("rules", "renewal_at_risk.enabled", choices=(True, False)),
)


@dataclass(frozen=True, slots=True)
class Candidate:
    scoring: ScoringConfig
    rules: AlertsConfig

    def with_values(self, values: dict[str, Any], version: str) -> Candidate:
        """These configs with ``values`` (``target.path`` -> value) set, under ``version``."""
        documents = {"scoring": self.scoring.model_dump(mode="json"), "rules": self.rules.model_dump(mode="json")}
        for name, value in values.items():
            target, _, path = name.partition(".")
            node = documents[target] if target == "scoring" else documents[target]["rules"]
            *parents, last = path.split(".")
            for part in parents:
                node = node[part]
            node[last] = value
        documents["scoring"]["version"] = documents["rules"]["version"] = version
        levels = documents["scoring"]["levels"]
        levels["critical"] = max(levels["critical"], levels["high"] + 1)
        return Candidate(
            ScoringConfig.model_validate(documents["scoring"]), AlertsConfig.model_validate(documents["rules"])
        )


@dataclass(frozen=True, slots=True)
class Judged:
    candidate: Candidate
    figures: EarlyWarningFigures
    violations: list[float]

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.violations)

    @property
    def objective(self) -> float:
        """Early recall first; then a longer median lead; then fewer healthy accounts alerted (tie-breaks)."""
        f = self.figures
        lead = min(f.median_lead_days or 0.0, 365.0) / 365.0
        return (f.recall or 0.0) + 0.001 * lead - 0.0001 * (f.healthy_alerted_share or 0.0)


@dataclass
class TuneResult:
    current: tuple[Judged, Judged]
    """The current configs on the tuning and held-out halves."""
    best: tuple[Judged, Judged]
    """The candidate found on the tuning half, then on the held-out half."""
    trials: int
    feasible_trials: int
    tuning_accounts: list[str] = field(default_factory=list)
    held_out_accounts: list[str] = field(default_factory=list)


def judge(
    history: History,
    candidate: Candidate,
    budget: Budget,
    accounts: Sequence[str],
    *,
    cache: DriverCache | None = None,
    unannounced: Sequence[str] = (),
) -> Judged:
    """The candidate's figures on ``accounts`` (and only them) and its budget violations."""
    run = replay(history, candidate.scoring, candidate.rules, accounts=accounts, cache=cache)
    figures = early_warning(
        run.records(),
        history.outcomes,
        accounts,
        end=history.end,
        messages=run.messages,
        digest_only=candidate.rules.digest_only_rules(),
        unannounced=unannounced,
    )
    return Judged(candidate, figures, budget.violations(figures))


def tune(
    history: History,
    current: Candidate,
    *,
    budget: Budget = Budget(),
    trials: int = 40,
    seed: int = 0,
    space: Sequence[Parameter] = SEARCH_SPACE,
    version: str = "tuned",
    unannounced: Sequence[str] = (),
    progress: Callable[[int, Judged], None] | None = None,
) -> TuneResult:
    """Search ``space`` from ``current`` for ``trials`` trials on the tuning half of ``history``'s accounts (a
    split by ``seed``); the held-out half is replayed only for the current configs and the candidate found."""
    tuning, held_out = split_halves(list(history.accounts), seed)
    tuning_history = history.only(tuning)  # the search never sees the held-out half
    cache = DriverCache(keep=9)
    judged: dict[int, Judged] = {}

    def objective(trial: optuna.Trial) -> float:
        values = {f"{p.target}.{p.path}": p.sample(trial) for p in space}
        candidate = current.with_values(values, version)
        result = judge(tuning_history, candidate, budget, tuning, cache=cache, unannounced=unannounced)
        judged[trial.number] = result
        for name, violation in zip(Budget.NAMES, result.violations, strict=True):
            trial.set_constraint(name, violation)
        if progress is not None:
            progress(trial.number, result)
        return result.objective

    optuna.logging.set_verbosity(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=min(10, trials))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial({f"{p.target}.{p.path}": _plain(p.current(current)) for p in space}, skip_if_exists=True)
    study.optimize(objective, n_trials=trials)

    feasible = [j for j in judged.values() if j.feasible]
    if feasible:
        best_tuning = max(feasible, key=lambda j: j.objective)
    else:  # nothing within the budget: the least over it
        best_tuning = min(judged.values(), key=lambda j: (sum(max(0.0, v) for v in j.violations), -j.objective))
    first = judged[0]
    return TuneResult(
        current=(first, judge(history, current, budget, held_out, unannounced=unannounced)),
        best=(best_tuning, judge(history, best_tuning.candidate, budget, held_out, unannounced=unannounced)),
        trials=len(judged),
        feasible_trials=len(feasible),
        tuning_accounts=tuning,
        held_out_accounts=held_out,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return float(value)
    return value
