"""Alerting configuration: pydantic models loaded from YAML (the shipped default is ``default_rules.yaml``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.config_files import ConfigFileError, load_config_file
from schemas.vocabulary import Level, Locale, Points, Severity, SeverityCuts, Tier

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_rules.yaml")

ALL_TIERS: tuple[Tier, ...] = ("strategic", "key", "standard")


class AlertConfigError(ConfigFileError):
    """Invalid alerting configuration; ``field`` is the dotted path of the first offending field, if known."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Rule(_Strict):
    enabled: bool = True
    resolve_hold_days: float | None = Field(default=None, ge=0)
    """This rule's hold before resolving (None: the policy's ``resolve_hold_days``)."""
    tiers: tuple[Tier, ...] = Field(default=ALL_TIERS, min_length=1)
    """Tiers the rule applies to (to silence a rule everywhere, set ``enabled: false``)."""
    digest_only: bool = False
    """Never paged: the rule's alerts are at most warnings, told in the daily digest."""
    for_days: float = Field(default=0, ge=0)
    """Fires only once its condition has held this long (by when it began: the drivers' ``since``, the level's
    since-when), like Prometheus' ``for``: a blip that passes is never told."""

    @field_validator("tiers")
    @classmethod
    def _distinct(cls, tiers: tuple[Tier, ...]) -> tuple[Tier, ...]:
        if len(set(tiers)) != len(tiers):
            raise ValueError("tiers must not repeat")
        return tiers

    def applies_to(self, tier: Tier) -> bool:
        return self.enabled and tier in self.tiers


class DriverRule(_Rule):
    """Fires on the health engine's drivers of the rule's codes with at least ``min_points`` points."""

    min_points: Points = 0.0
    severity: Severity | SeverityCuts

    def severity_of(self, points: float) -> Severity:
        return self.severity.of(points) if isinstance(self.severity, SeverityCuts) else self.severity


class DepartureRule(DriverRule):
    """A champion, sponsor or decision maker leaving, one alert per departed contact: news at ``severity`` while a
    successor may still be named (the scoring's ``successor_grace_days``), ``vacant_severity`` once the grace
    has passed with the role still vacant (a shorter grace when the departing contact was the account's only
    decision-level contact), or at once when the account's level has reached ``compound_level`` (other signals
    compound on the departure). With ``clear_on_successor`` a successor named clears the alert."""

    vacant_severity: Severity | None = None
    """None: ``severity`` throughout."""
    compound_level: Level | None = None
    clear_on_successor: bool = False


class LevelRule(_Rule):
    """Fires while the account's level is one of the keys of ``severity``, with that severity."""

    severity: dict[Level, Severity] = Field(min_length=1)


class JumpRule(_Rule):
    """Fires when the risk rose by at least ``min_jump`` points over the last 7 days."""

    min_jump: float = Field(gt=0, le=100)
    severity: Severity
    min_level: Level = "medium"
    """Only when the account ends at this level or above: a jump that stays within ``low`` is noise."""
    unless_explained: bool = True
    """Not while a driver rule (usage drop, champion left…) alerts on the account: that alert already says why
    the risk rose; a jump alone tells of several signals each under its own rule's threshold."""
    unless_one_rule: bool = True
    """Not when everything that rose is watched by one driver rule that does not fire (a one-week usage dip, an
    invoice a little late): that rule judged the signal below its threshold, and alerts, saying why, once it is
    worth it. Needs the components' risks now and 7 days ago (without them the jump fires)."""


class RenewalRule(_Rule):
    """Fires when the renewal is at most ``within_days`` away and the level is one of the keys of ``severity``."""

    within_days: int = Field(gt=0)
    severity: dict[Level, Severity] = Field(min_length=1)


class RulesConfig(_Strict):
    risk_level: LevelRule
    risk_jump: JumpRule
    usage_drop: DriverRule
    usage_slide: DriverRule = DriverRule(enabled=False, severity="warning")
    """A slow multi-week slide (``usage.slide``); off unless configured, so older rule files stay valid."""
    ticket_surge: DriverRule
    urgent_ticket_open: DriverRule
    payment_late: DriverRule
    payment_failed: DriverRule
    champion_left: DepartureRule
    sponsor_left: DepartureRule
    decision_maker_left: DepartureRule
    new_executive_unengaged: DriverRule
    single_threaded: DriverRule
    business_review_missed: DriverRule
    nps_detractor: DriverRule
    renewal_at_risk: RenewalRule


class PolicyConfig(_Strict):
    digest_hour: int = Field(default=9, ge=0, le=23)
    """Local hour (KAM's timezone) at which the daily digest goes out."""
    immediate_budget_per_day: int = Field(default=3, ge=0)
    """Immediate notifications per KAM and local day; beyond it, alerts wait for the digest."""
    escalation_delay_hours: float = Field(default=24.0, gt=0)
    """A critical alert still unacknowledged this long after it was notified goes to the KAM's manager."""
    team_channel: str | None = Field(default=None, min_length=1)
    """Slack channel that also receives strategic accounts' critical alerts (none: not sent)."""
    team_channel_locale: Locale = "en"
    """Language of the team channel's messages."""
    team_channel_timezone: str = Field(default="UTC", min_length=1)
    """Time zone of the team channel's messages (IANA name)."""

    @field_validator("team_channel_timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}") from None
        return name

    cleared_note_max_days: int = Field(default=7, ge=1)
    """A "cleared" note on a warning or info alert never makes a digest of its own: it rides with the KAM's next
    digest that has news, or goes in the last digest within this many days of the alert resolving."""
    resolve_hold_days: float = Field(default=14.0, ge=0)
    """An alert whose condition clears stays open (unchanged, nothing sent) until the condition has stayed clear
    this long, then resolves, dated the end of the hold; if the condition comes back meanwhile, the same alert
    simply goes on. 0: resolve as soon as the condition clears. A rule may set its own."""


class AlertsConfig(_Strict):
    version: str = Field(min_length=1)
    rules: RulesConfig
    policy: PolicyConfig = PolicyConfig()

    def digest_only_rules(self) -> tuple[str, ...]:
        """The rules that never page."""
        return tuple(name for name in type(self.rules).model_fields if getattr(self.rules, name).digest_only)

    def resolve_hold(self, rule: str) -> timedelta:
        """How long an alert of ``rule`` stays open once its condition clears (a rule of its own, else the
        policy's)."""
        own = getattr(self.rules, rule, None)
        days = own.resolve_hold_days if isinstance(own, _Rule) else None
        return timedelta(days=self.policy.resolve_hold_days if days is None else days)


def load_rules_config(path: Path | None = None) -> AlertsConfig:
    """Load and validate a YAML alerting config (``None``: the shipped default)."""
    source = path if path is not None else DEFAULT_CONFIG_PATH
    return load_config_file(source, AlertsConfig, what="alerting config", error=AlertConfigError)
