"""Pure reconciliation of the desired alert set with the open alerts: what to open, re-grade and resolve."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from alerts.model import SEVERITY_RANK, DesiredAlert, OpenAlert, Severity
from alerts.vocabulary import rule_label


@dataclass(frozen=True, slots=True)
class Opened:
    alert: DesiredAlert
    fired_at: datetime
    """When the condition became true, never later than the reconciliation's ``as_of``."""


@dataclass(frozen=True, slots=True)
class SeverityChanged:
    alert_id: int
    dedup_key: str
    account_id: str
    previous: Severity
    severity: Severity
    alert: DesiredAlert

    @property
    def raised(self) -> bool:
        return SEVERITY_RANK[self.severity] > SEVERITY_RANK[self.previous]


@dataclass(frozen=True, slots=True)
class Resolved:
    alert_id: int
    dedup_key: str
    account_id: str
    rule: str
    subject: str | None
    resolved_at: datetime
    message_en: str
    message_fr: str


@dataclass(frozen=True, slots=True)
class Changes:
    opened: tuple[Opened, ...] = ()
    severity_changed: tuple[SeverityChanged, ...] = ()
    resolved: tuple[Resolved, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.opened or self.severity_changed or self.resolved)


def reconcile(desired: Iterable[DesiredAlert], open_alerts: Iterable[OpenAlert], as_of: datetime) -> Changes:
    """Changes that make the open alerts match ``desired``.

    ``open_alerts`` must be the open alerts of exactly the accounts that were evaluated: an open alert with no
    desired counterpart is resolved. Each change list is sorted by dedup key (deterministic).
    """
    if as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    wanted = _one_per_key(desired)
    current: dict[str, OpenAlert] = {}
    duplicates: list[OpenAlert] = []
    for alert in sorted(open_alerts, key=lambda a: (a.dedup_key, a.fired_at, a.alert_id)):
        # Keep the oldest alert of a key; any other one breaks "one open alert per key" and is resolved.
        if alert.dedup_key in current:
            duplicates.append(alert)
        else:
            current[alert.dedup_key] = alert

    opened = tuple(
        Opened(alert, min(alert.condition_since, as_of)) for key, alert in sorted(wanted.items()) if key not in current
    )
    changed = tuple(
        SeverityChanged(old.alert_id, key, old.account_id, old.severity, new.severity, new)
        for key, new in sorted(wanted.items())
        if (old := current.get(key)) is not None and old.severity != new.severity
    )
    gone = [a for key, a in current.items() if key not in wanted] + duplicates
    resolved = tuple(_resolved(a, as_of) for a in sorted(gone, key=lambda a: (a.dedup_key, a.alert_id)))
    return Changes(opened, changed, resolved)


def _one_per_key(desired: Iterable[DesiredAlert]) -> dict[str, DesiredAlert]:
    """Should two desired alerts share a key, the more severe one (then the older condition) stands for both."""
    wanted: dict[str, DesiredAlert] = {}
    for alert in desired:
        other = wanted.get(alert.dedup_key)
        if other is None or _precedence(alert) < _precedence(other):
            wanted[alert.dedup_key] = alert
    return wanted


def _precedence(alert: DesiredAlert) -> tuple[int, datetime, str, str]:
    return (-SEVERITY_RANK[alert.severity], alert.condition_since, alert.title_en, alert.title_fr)


def _resolved(alert: OpenAlert, as_of: datetime) -> Resolved:
    en, fr = rule_label(alert.rule, "en"), rule_label(alert.rule, "fr")
    about = f" ({alert.subject})" if alert.subject else ""
    return Resolved(
        alert_id=alert.alert_id,
        dedup_key=alert.dedup_key,
        account_id=alert.account_id,
        rule=alert.rule,
        subject=alert.subject,
        resolved_at=as_of,
        message_en=f"Resolved: {en}{about}, the condition has cleared",
        message_fr=f"Alerte résolue\u00a0: {fr}{about}, la condition n'est plus remplie",
    )
