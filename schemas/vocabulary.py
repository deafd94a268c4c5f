"""The shared health vocabulary: the words scoring, alerting, the API and the pages all use about an account's
health (tiers, levels, severities, locales, components), the drivers that explain a score, and their JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Self, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, model_validator

Tier = Literal["strategic", "key", "standard"]
Level = Literal["low", "medium", "high", "critical"]
Severity = Literal["info", "warning", "critical"]
Locale = Literal["en", "fr"]
ComponentName = Literal["usage", "support", "payment", "relationship", "engagement"]
EvidenceValue: TypeAlias = str | int | float | None

TIERS: tuple[Tier, ...] = ("strategic", "key", "standard")
LEVELS: tuple[Level, ...] = ("low", "medium", "high", "critical")
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
LOCALES: tuple[Locale, ...] = ("en", "fr")
COMPONENTS: tuple[ComponentName, ...] = ("usage", "support", "payment", "relationship", "engagement")
AT_RISK_LEVELS: tuple[Level, ...] = ("high", "critical")
# Every code a driver may carry (health_engine/scoring.py gives them; a unit test keeps this list complete).
DRIVER_CODES: tuple[str, ...] = (
    "usage.drop",
    "usage.users_drop",
    "usage.silent",
    "usage.slide",
    "support.surge",
    "support.urgent_open",
    "support.escalations",
    "support.low_csat",
    "payment.overdue",
    "payment.failed",
    "payment.disputed",
    "payment.written_off",
    "relationship.champion_left",
    "relationship.sponsor_left",
    "relationship.decision_maker_left",
    "relationship.new_executive_unengaged",
    "relationship.single_threaded",
    "relationship.no_champion",
    "relationship.no_sponsor",
    "relationship.detractor",
    "engagement.meetings_missed",
    "engagement.no_business_review",
    "engagement.no_reply_streak",
    "engagement.nps_detractor",
    "renewal.near",
)

LEVEL_RANK: dict[Level, int] = {level: rank for rank, level in enumerate(LEVELS)}
SEVERITY_RANK: dict[Severity, int] = {severity: rank for rank, severity in enumerate(SEVERITIES)}

Points = Annotated[float, Field(ge=0, le=100)]


class SeverityCuts(BaseModel):
    """A driver's severity from its points: ``warning`` from this many points, ``critical`` from that many,
    else ``info``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warning: Points
    critical: Points

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.critical < self.warning:
            raise ValueError("critical must be at least warning")
        return self

    def of(self, points: float) -> Severity:
        if points >= self.critical:
            return "critical"
        return "warning" if points >= self.warning else "info"


@dataclass(frozen=True, slots=True)
class Driver:
    """One reason for risk, with a stable ``code`` such as ``usage.drop``. ``points`` (0..100) is the risk this
    driver alone puts on its component; for ``renewal.near``, the risk the renewal multiplier adds."""

    component: str
    code: str
    severity: Severity
    points: float
    evidence: dict[str, EvidenceValue]
    since: datetime | None
    message_en: str
    message_fr: str


@dataclass(frozen=True, slots=True)
class Closure:
    """An account closed by its outcome (``churned``) at ``at``: lost, no longer scored nor alerted on, until a
    later account event reopens it."""

    account_id: str
    at: datetime
    reason: str | None


def driver_json(d: Driver) -> dict[str, Any]:
    """The one JSON form of a driver (stored with scores, in notification payloads, in the API)."""
    return {
        "component": d.component,
        "code": d.code,
        "severity": d.severity,
        "points": d.points,
        "evidence": dict(d.evidence),
        "since": d.since.isoformat() if d.since is not None else None,
        "message_en": d.message_en,
        "message_fr": d.message_fr,
    }


def driver_from_json(raw: Mapping[str, Any]) -> Driver:
    since = raw.get("since")
    return Driver(
        component=raw["component"],
        code=raw["code"],
        severity=raw["severity"],
        points=float(raw["points"]),
        evidence=dict(raw.get("evidence") or {}),
        since=datetime.fromisoformat(since) if since is not None else None,
        message_en=raw["message_en"],
        message_fr=raw["message_fr"],
    )
