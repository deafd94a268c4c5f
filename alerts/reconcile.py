"""Pure reconciliation of the desired alert set with the open alerts: what to open, re-grade, hold and resolve.

An open alert whose condition clears is not resolved at once: it is held (state unchanged, nothing sent) until
the condition has stayed clear for the rule's hold, and resolves then, dated the end of the hold; should the
condition come back within the hold, the same alert goes on (Alertmanager's ``resolve_timeout``, as
hysteresis against a signal oscillating around a rule's threshold)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.model import DesiredAlert, OpenAlert
from schemas.vocabulary import SEVERITY_RANK, Closure, Severity


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
    note: str
    """Why, for the alert's history (``alert_transitions.note``)."""


@dataclass(frozen=True, slots=True)
class Clearing:
    """An open alert whose condition is clear, held open: it resolves at ``resolves_at`` (``since`` plus the
    rule's hold) unless the condition comes back first. Emitted when the alert starts clearing, and again when
    its ``resolves_at`` as stored differs (the hold was reconfigured)."""

    alert_id: int
    dedup_key: str
    account_id: str
    since: datetime
    resolves_at: datetime


@dataclass(frozen=True, slots=True)
class Returned:
    """A held alert whose condition came back within the hold: it simply goes on (no new alert, no message)."""

    alert_id: int
    dedup_key: str
    account_id: str
    clearing_since: datetime


@dataclass(frozen=True, slots=True)
class Changes:
    opened: tuple[Opened, ...] = ()
    severity_changed: tuple[SeverityChanged, ...] = ()
    resolved: tuple[Resolved, ...] = ()
    clearing: tuple[Clearing, ...] = ()
    returned: tuple[Returned, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.opened or self.severity_changed or self.resolved or self.clearing or self.returned)


HoldOf = Callable[[str], timedelta]
"""The hold of a rule (``AlertsConfig.resolve_hold``)."""


def no_hold(rule: str) -> timedelta:
    return timedelta(0)


def hold_decision(
    clearing_since: datetime | None, hold: timedelta, as_of: datetime
) -> tuple[datetime, datetime | None]:
    """For an open alert whose condition is clear at ``as_of``: (since when it is clear, when it resolves, or
    None while held). ``clearing_since`` None: it clears now. It resolves once ``as_of`` reaches the end of the
    hold, dated that end, however late the evaluation that finds it (a hold of 0 resolves at once, at ``as_of``)."""
    since = as_of if clearing_since is None else clearing_since
    end = since + hold
    return since, (end if as_of >= end else None)


def reconcile(
    desired: Iterable[DesiredAlert],
    open_alerts: Iterable[OpenAlert],
    as_of: datetime,
    hold_of: HoldOf = no_hold,
) -> Changes:
    """Changes that make the open alerts match ``desired``.

    ``open_alerts`` must be the open alerts of exactly the accounts that were evaluated: an open alert with no
    desired counterpart is clearing, and resolves once clear for its rule's hold (``hold_of``; default none, see
    ``hold_decision``); one desired again while clearing has returned. A duplicate of a key resolves at once.
    Each change list is sorted by dedup key (deterministic).
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
    returned = tuple(
        Returned(old.alert_id, key, old.account_id, old.clearing_since)
        for key, old in sorted(current.items())
        if key in wanted and old.clearing_since is not None
    )
    resolved: list[Resolved] = []
    clearing: list[Clearing] = []
    for key, old in sorted(current.items()):
        if key in wanted:
            continue
        since, resolved_at = hold_decision(old.clearing_since, hold_of(old.rule), as_of)
        if resolved_at is not None:
            resolved.append(_resolved(old, resolved_at, since if resolved_at > since else None))
        elif old.clearing_since is None or old.resolves_at != since + hold_of(old.rule):
            clearing.append(Clearing(old.alert_id, key, old.account_id, since, since + hold_of(old.rule)))
    resolved += (_resolved(a, as_of) for a in duplicates)
    resolved.sort(key=lambda r: (r.dedup_key, r.alert_id))
    return Changes(opened, changed, tuple(resolved), tuple(clearing), returned)


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


def _resolved(alert: OpenAlert, as_of: datetime, clear_since: datetime | None = None) -> Resolved:
    """Resolved at ``as_of``; ``clear_since``: after a hold, the condition clear since then."""
    note = "condition cleared" if clear_since is None else f"condition clear since {clear_since.isoformat()}"
    return Resolved(alert.alert_id, alert.dedup_key, alert.account_id, alert.rule, alert.subject, as_of, note)


def close_accounts(open_alerts: Iterable[OpenAlert], closures: Mapping[str, Closure]) -> Changes:
    """A closed (lost) account's open alerts all resolve, dated its closure, with the reason: nothing about it is
    left open to remind, escalate or clear."""
    resolved = []
    for alert in open_alerts:
        closure = closures.get(alert.account_id)
        if closure is None:
            continue
        why = f"account lost on {closure.at.date().isoformat()}" + (f": {closure.reason}" if closure.reason else "")
        at = max(closure.at, alert.fired_at)
        resolved.append(Resolved(alert.alert_id, alert.dedup_key, alert.account_id, alert.rule, alert.subject, at, why))
    return Changes(resolved=tuple(sorted(resolved, key=lambda r: (r.dedup_key, r.alert_id))))
