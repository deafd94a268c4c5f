"""Scoring configuration: pydantic models loaded from YAML (the shipped default is ``default_scoring.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.config_files import ConfigFileError, load_config_file
from schemas.vocabulary import ComponentName, Level, Points, SeverityCuts, Tier

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_scoring.yaml")


class ScoringConfigError(ConfigFileError):
    """Invalid scoring configuration; ``field`` is the dotted path of the first offending field, if known."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Ramp(_Strict):
    """Points for a measured value: none below ``start``, ``low`` at ``start`` rising linearly to ``high`` at
    ``full`` and flat beyond, so more of the measured thing never gives fewer points."""

    start: float
    full: float
    low: Points
    high: Points

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.full <= self.start:
            raise ValueError("full must be greater than start")
        if self.high < self.low:
            raise ValueError("high must be at least low")
        return self

    def points(self, value: float) -> float:
        if value < self.start:
            return 0.0
        fraction = min(1.0, (value - self.start) / (self.full - self.start))
        return self.low + (self.high - self.low) * fraction


class Weights(_Strict):
    usage: float = Field(ge=0)
    support: float = Field(ge=0)
    payment: float = Field(ge=0)
    relationship: float = Field(ge=0)
    engagement: float = Field(ge=0)

    @model_validator(mode="after")
    def _not_all_zero(self) -> Self:
        if self.usage + self.support + self.payment + self.relationship + self.engagement <= 0:
            raise ValueError("at least one weight must be positive")
        return self

    def of(self, component: ComponentName) -> float:
        return float(getattr(self, component))


class AcuteShares(_Strict):
    """How much of each component's risk counts in the acute term (1: all of it). Below 1 for the components
    whose risk is statistical (volumes against a baseline) rather than an event, so that alone they need to be
    extreme to raise an account to high."""

    usage: float = Field(default=1.0, ge=0, le=1)
    support: float = Field(default=1.0, ge=0, le=1)
    payment: float = Field(default=1.0, ge=0, le=1)
    relationship: float = Field(default=1.0, ge=0, le=1)
    engagement: float = Field(default=1.0, ge=0, le=1)

    def of(self, component: ComponentName) -> float:
        return float(getattr(self, component))


class TierConfig(_Strict):
    weights: Weights
    acute_factor: float = Field(gt=0, le=1)
    """Share of the worst component's risk the account keeps whatever the other components say."""


class Tiers(_Strict):
    strategic: TierConfig
    key: TierConfig
    standard: TierConfig

    def of(self, tier: Tier) -> TierConfig:
        return {"strategic": self.strategic, "key": self.key, "standard": self.standard}[tier]


class Levels(_Strict):
    """Lowest risk of each level above ``low``."""

    medium: float = Field(gt=0, le=100)
    high: float = Field(gt=0, le=100)
    critical: float = Field(gt=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.medium < self.high < self.critical:
            raise ValueError("cut-offs must increase: medium < high < critical")
        return self

    def of(self, risk: float) -> Level:
        if risk >= self.critical:
            return "critical"
        if risk >= self.high:
            return "high"
        return "medium" if risk >= self.medium else "low"


class RenewalConfig(_Strict):
    window_days: int = Field(gt=0)
    max_multiplier: float = Field(ge=1, le=3)


class SeasonalPeriod(_Strict):
    """Days of the year (``MM-DD``, both included; ``start`` after ``end`` wraps over New Year) when activity is
    expected at ``factor`` times an ordinary day: the business calendar of the portfolio (summer, year-end), or
    of the accounts of some ``industries`` only (their CRM ``industry``; empty: every account)."""

    start: str = Field(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")
    end: str = Field(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")
    factor: float = Field(gt=0, le=1)
    industries: tuple[str, ...] = ()

    def covers(self, day: date, industry: str | None = None) -> bool:
        if self.industries and industry not in self.industries:
            return False
        key = f"{day.month:02d}-{day.day:02d}"
        if self.start <= self.end:
            return self.start <= key <= self.end
        return key >= self.start or key <= self.end


class Slide(_Strict):
    """A slow slide: the median of the last ``recent_weeks`` weeks against the median of as many weeks
    ``span_weeks`` earlier. It sees a decline too gradual for the weekly drop (whose baseline follows it down)."""

    recent_weeks: int = Field(ge=1, le=12)
    span_weeks: int = Field(ge=2, le=40)
    ramp: Ramp
    """Points by the relative decline."""

    @property
    def weeks(self) -> int:
        return self.span_weeks + self.recent_weeks


class UsageConfig(_Strict):
    baseline_weeks: int = Field(ge=2, le=52)
    min_weekly_volume: float = Field(ge=0)
    min_baseline_users: float = Field(ge=0)
    seasonality: tuple[SeasonalPeriod, ...] = ()
    """Expected lulls: a day's usage is divided by its factor (the lowest that applies) before any comparison."""
    min_drop_z: float = Field(ge=0)
    """A drop counts only when it exceeds this many times the account's own week-to-week variability."""
    min_relative_spread: float = Field(ge=0, le=1)
    """Week-to-week variability assumed at least, as a share of the baseline week."""
    drop: Ramp
    users_drop: Ramp
    single_week_factor: float = Field(gt=0, le=1)
    """A drop the previous week does not confirm weighs this much."""
    two_week_factor: float = Field(default=1.0, gt=0, le=1)
    """A drop the previous week confirms but not the one before (2 weeks in a row, as long as a passing dip)
    weighs this much; 3 weeks in a row weigh fully."""
    regular_min_active_days: int = Field(ge=0)
    silent: Ramp
    silent_irregular: Ramp
    slide: Slide | None = None
    """None: no slow-slide driver."""

    @model_validator(mode="after")
    def _longer_weighs_more(self) -> Self:
        if self.single_week_factor > self.two_week_factor:
            raise ValueError("single_week_factor must be at most two_week_factor")
        return self

    def seasonal_factor(self, day: date, industry: str | None = None) -> float:
        return min((p.factor for p in self.seasonality if p.covers(day, industry)), default=1.0)

    @property
    def weeks_seen(self) -> int:
        """Full weeks of usage the drivers look at (this week included)."""
        return max(self.baseline_weeks, self.slide.weeks if self.slide is not None else 0) + 1


class UrgentOpen(_Strict):
    urgent: Ramp
    high: Ramp


class SupportConfig(_Strict):
    recent_days: int = Field(gt=0)
    baseline_days: int = Field(gt=0)
    priority_weights: dict[str, float]
    baseline_floor: float = Field(gt=0)
    min_recent_tickets: int = Field(ge=1)
    min_recent_weight: float = Field(ge=0)
    surge_min_z: float = Field(ge=0)
    """A surge counts only when the recent weighted count exceeds the usual one by this many standard deviations
    (Poisson, each ticket weighing ``surge_ticket_weight`` on average): a few tickets on a quiet account are luck."""
    surge_ticket_weight: float = Field(gt=0)
    surge: Ramp
    urgent_open: UrgentOpen
    lookback_days: int = Field(gt=0)
    escalation_points: Points
    reopening_points: Points
    escalations_cap: Points
    low_csat_max: int = Field(ge=1, le=5)
    low_csat_min_tickets: int = Field(ge=1)
    """Fewer low ratings than this in the lookback is the odd bad day, not a trend."""
    low_csat_share: Ramp
    """Points by the share of the rated tickets rated low in the lookback."""

    @model_validator(mode="after")
    def _all_priorities(self) -> Self:
        missing = {"low", "normal", "high", "urgent"} - set(self.priority_weights)
        if missing:
            raise ValueError(f"priority_weights lacks {', '.join(sorted(missing))}")
        return self


class PaymentConfig(_Strict):
    min_paid_history: int = Field(ge=1)
    usual_delay_cap_days: int = Field(ge=0)
    overdue: Ramp
    failed_lookback_days: int = Field(gt=0)
    failed_first_points: Points
    failed_each_points: Points
    failed_cap: Points
    disputed_points: Points
    written_off_points: Points
    written_off_lookback_days: int = Field(gt=0)


class DeparturePoints(_Strict):
    champion: Points
    executive_sponsor: Points
    decision_maker: Points


class PendingSuccessorShares(_Strict):
    """Share of a departure's points kept while a successor may still be named (within
    ``successor_grace_days`` of the departure, or ``sole_successor_grace_days`` for the account's only
    decision-level contact); 1: the departure weighs fully at once."""

    champion: float = Field(default=1.0, ge=0, le=1)
    executive_sponsor: float = Field(default=1.0, ge=0, le=1)
    decision_maker: float = Field(default=1.0, ge=0, le=1)


class RelationshipConfig(_Strict):
    departure_decay_days: int = Field(gt=0)
    departure_points: DeparturePoints
    successor_grace_days: int = Field(default=0, ge=0)
    """Days after a departure during which a successor is routinely named (a hand-over, not a loss): the
    departure's driver says ``successor: pending`` meanwhile, ``none`` after it while the role stays vacant,
    ``named`` once someone took the role."""
    sole_successor_grace_days: int = Field(default=0, ge=0)
    """The same grace when the departing contact was the account's only decision-level contact: shorter, as that
    vacancy hurts more (0: vacant at once, weighing fully)."""
    pending_successor_share: PendingSuccessorShares = PendingSuccessorShares()
    no_champion_points: Points
    no_sponsor_points: Points
    new_executive_days: int = Field(gt=0)
    new_executive_grace_days: int = Field(ge=0)
    initial_power_map_days: int = Field(ge=0)
    """Contacts added within this many days of the first known contact are the initial power map, not newcomers."""
    successor_factor: float = Field(ge=0, le=1)
    """Share of a departure's points kept once a successor in the same role has been added after it."""
    successor_must_engage: bool = True
    """A decision-level successor counts only once engaged (a meeting or review attended); false: named is named
    (an unengaged newcomer is ``new_executive_unengaged``'s business)."""
    new_executive_points: Points
    new_executive_ramp: Ramp | None = None
    """Points by the days a new executive has gone unengaged (from ``new_executive_grace_days``); None: a flat
    ``new_executive_points``."""
    single_contact_points: Points
    no_decision_level_points: Points
    detractor_points: Points
    detractor_cap: Points


class EngagementConfig(_Strict):
    lookback_days: int = Field(gt=0)
    business_review_weight: float = Field(gt=0)
    min_missed: int = Field(ge=1)
    missed_rate: Ramp
    no_business_review: Ramp
    nps_detractor_max: int = Field(ge=0, le=10)
    nps_max_age_days: int = Field(gt=0)
    nps: Ramp
    no_reply_streak: Ramp


class ScoringConfig(_Strict):
    version: str = Field(min_length=1)
    levels: Levels
    severity: SeverityCuts
    tiers: Tiers
    acute_shares: AcuteShares = AcuteShares()
    renewal: RenewalConfig
    usage: UsageConfig
    support: SupportConfig
    payment: PaymentConfig
    relationship: RelationshipConfig
    engagement: EngagementConfig


@dataclass(frozen=True, slots=True)
class Windows:
    """How far back each kind of signal matters at ``as_of`` (derived from the scoring config)."""

    usage_days: int
    ticket_days: int
    invoice_days: int
    engagement_days: int

    @classmethod
    def of(cls, config: ScoringConfig) -> Windows:
        support, payment, engagement = config.support, config.payment, config.engagement
        return cls(
            usage_days=7 * config.usage.weeks_seen + 1,
            ticket_days=max(support.recent_days + support.baseline_days, support.lookback_days) + 1,
            invoice_days=max(payment.written_off_lookback_days, payment.failed_lookback_days, 400),
            engagement_days=max(engagement.lookback_days, engagement.nps_max_age_days, 1) + 1,
        )


def load_scoring_config(path: Path | None = None) -> ScoringConfig:
    """Load and validate a YAML scoring config (``None``: the shipped default)."""
    source = path if path is not None else DEFAULT_CONFIG_PATH
    return load_config_file(source, ScoringConfig, what="scoring config", error=ScoringConfigError)
