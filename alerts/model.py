"""Inputs and outputs of the alerting core: plain frozen values, no behaviour, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from schemas.vocabulary import Driver, Level, Locale, Severity, Tier

AlertState = Literal["firing", "acknowledged"]


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """An account's profile and latest health at ``as_of``; ``risk_7d_ago`` feeds the jump rule and the trend,
    ``components`` and ``components_7d_ago`` (component name -> risk; empty when unknown) tell the jump rule what
    rose."""

    account_id: str
    name: str
    tier: Tier
    arr: Decimal
    currency: str
    renewal_date: date | None
    owner_kam_id: str | None
    risk: float
    level: Level
    risk_7d_ago: float | None
    level_since: datetime | None
    drivers: tuple[Driver, ...]
    as_of: datetime
    components: Mapping[str, float] = field(default_factory=dict)
    components_7d_ago: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """An alert not yet resolved, as stored."""

    alert_id: int
    dedup_key: str
    account_id: str
    rule: str
    subject: str | None
    severity: Severity
    state: AlertState
    fired_at: datetime
    snoozed_until: datetime | None = None
    acknowledged_at: datetime | None = None
    last_notified_at: datetime | None = None
    escalated_at: datetime | None = None
    clearing_since: datetime | None = None
    """When its condition was first found clear, this time: the alert is held open until the condition has
    stayed clear for the rule's hold (None: the condition holds)."""
    resolves_at: datetime | None = None
    """``clearing_since`` plus the hold, as last recorded (shown to people; the decision recomputes it)."""


@dataclass(frozen=True, slots=True)
class Kam:
    kam_id: str
    name: str
    email: str
    slack_user_id: str | None
    manager_kam_id: str | None
    locale: Locale
    timezone: str
    """IANA name, e.g. ``Europe/Paris``."""


@dataclass(frozen=True, slots=True)
class DesiredAlert:
    """An alert whose condition holds at ``as_of``; ``condition_since`` is when it became true."""

    dedup_key: str
    account_id: str
    rule: str
    subject: str | None
    severity: Severity
    condition_since: datetime
    drivers: tuple[Driver, ...]
    title_en: str
    title_fr: str


def dedup_key(account_id: str, rule: str, subject: str | None = None) -> str:
    """One open alert per key: the account and rule, plus the subject (a contact) where it matters."""
    return f"{account_id}:{rule}" if subject is None else f"{account_id}:{rule}:{subject}"


@dataclass(frozen=True, slots=True)
class DeliveryUpdate:
    alert_id: int
    delivery: Literal["immediate", "digest", "folded"]
    notified_at: datetime | None
    folded_into: int | None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    kind: str
    channel: str
    recipient: str
    kam_id: str | None
    alert_ids: tuple[int, ...]
    payload: dict[str, Any]
    send_after: datetime
