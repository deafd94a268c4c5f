"""Pure rule evaluation: ``evaluate(snapshot, config)`` gives the alerts whose condition holds at ``snapshot.as_of``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

from alerts.config import AlertsConfig, DepartureRule, DriverRule, JumpRule, LevelRule, RenewalRule
from alerts.model import AccountSnapshot, DesiredAlert, dedup_key
from schemas.vocabulary import LEVEL_RANK, Driver, Severity
from schemas.wording import LEVEL_TITLES, LEVEL_WORDS, number

TOP_DRIVERS = 3

# Rule -> the health engine's driver codes it watches, and the evidence key naming its subject (if any).
DRIVER_RULES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "usage_drop": (("usage.drop", "usage.users_drop", "usage.silent"), None),
    "usage_slide": (("usage.slide",), None),
    "ticket_surge": (("support.surge",), None),
    "urgent_ticket_open": (("support.urgent_open",), None),
    "payment_late": (("payment.overdue",), None),
    "payment_failed": (("payment.failed", "payment.disputed", "payment.written_off"), None),
    "champion_left": (("relationship.champion_left",), "contact_id"),
    "sponsor_left": (("relationship.sponsor_left",), "contact_id"),
    "decision_maker_left": (("relationship.decision_maker_left",), "contact_id"),
    "new_executive_unengaged": (("relationship.new_executive_unengaged",), None),
    "single_threaded": (("relationship.single_threaded",), None),
    "business_review_missed": (("engagement.meetings_missed",), None),
    "nps_detractor": (("engagement.nps_detractor",), None),
}


def evaluate(snapshot: AccountSnapshot, config: AlertsConfig) -> tuple[DesiredAlert, ...]:
    """Every alert the account deserves at ``snapshot.as_of``, sorted by dedup key (deterministic)."""
    if snapshot.as_of.utcoffset() is None:
        raise ValueError("snapshot.as_of must be timezone-aware")
    rules = config.rules
    found: list[DesiredAlert] = []
    found += _risk_level(snapshot, rules.risk_level)
    explained: list[DesiredAlert] = []
    for rule, (codes, subject_key) in DRIVER_RULES.items():
        explained += _driver_rule(snapshot, rule, getattr(rules, rule), codes, subject_key)
    found += _risk_jump(snapshot, rules.risk_jump, explained=bool(explained), one_rule=_one_rule_rose(snapshot))
    found += explained
    found += _renewal_at_risk(snapshot, rules.renewal_at_risk)
    # A condition that has not held for its rule's ``for_days`` yet is not an alert yet.
    found = [a for a in found if snapshot.as_of - a.condition_since >= timedelta(days=getattr(rules, a.rule).for_days)]
    # A digest-only rule never pages: at most a warning.
    found = [
        replace(a, severity="warning") if a.severity == "critical" and getattr(rules, a.rule).digest_only else a
        for a in found
    ]
    return tuple(sorted(found, key=lambda a: a.dedup_key))


def top_drivers(drivers: Iterable[Driver], limit: int = TOP_DRIVERS) -> tuple[Driver, ...]:
    """The strongest drivers first; ties broken on every field, so the order never depends on the input order."""
    return tuple(sorted(drivers, key=_driver_order))[:limit]


def _driver_order(d: Driver) -> tuple[float, str, str, str, str, str]:
    since = d.since.isoformat() if d.since is not None else ""
    evidence = repr(sorted(d.evidence.items(), key=lambda item: item[0]))
    return (-d.points, d.code, since, d.message_en, d.message_fr, evidence)


def _alert(
    snapshot: AccountSnapshot,
    rule: str,
    subject: str | None,
    severity: Severity,
    since: datetime | None,
    drivers: tuple[Driver, ...],
    title_en: str,
    title_fr: str,
) -> DesiredAlert:
    # A condition cannot have started after the moment we observe it.
    condition_since = snapshot.as_of if since is None else min(since, snapshot.as_of)
    return DesiredAlert(
        dedup_key=dedup_key(snapshot.account_id, rule, subject),
        account_id=snapshot.account_id,
        rule=rule,
        subject=subject,
        severity=severity,
        condition_since=condition_since,
        drivers=drivers,
        title_en=title_en,
        title_fr=title_fr,
    )


def _risk_level(snapshot: AccountSnapshot, rule: LevelRule) -> list[DesiredAlert]:
    severity = rule.severity.get(snapshot.level)
    if severity is None or not rule.applies_to(snapshot.tier):
        return []
    en, fr = LEVEL_TITLES[snapshot.level]
    score = f"{number(snapshot.risk, 'en')}/100", f"{number(snapshot.risk, 'fr')}/100"
    return [
        _alert(
            snapshot,
            "risk_level",
            None,
            severity,
            snapshot.level_since,
            top_drivers(snapshot.drivers),
            f"{en} ({score[0]})",
            f"{fr} ({score[1]})",
        )
    ]


_RULE_OF_CODE = {code: rule for rule, (codes, _) in DRIVER_RULES.items() for code in codes}


def _one_rule_rose(snapshot: AccountSnapshot) -> bool:
    """Whether every driver of the components whose risk rose over 7 days is watched by one and the same driver
    rule (which, not firing, judges them below its threshold). False when the components are unknown, when none
    rose (the renewal coming closer), or when an unwatched driver or a second rule's share in the rise."""
    before, now = snapshot.components_7d_ago, snapshot.components
    if not before or not now:
        return False
    rose = {c for c, risk in now.items() if round(risk, 1) > round(before.get(c, 0.0), 1)}
    rules = {_RULE_OF_CODE.get(d.code) for d in snapshot.drivers if d.component in rose and d.points > 0}
    return len(rules) == 1 and None not in rules


def _risk_jump(snapshot: AccountSnapshot, rule: JumpRule, *, explained: bool, one_rule: bool) -> list[DesiredAlert]:
    if snapshot.risk_7d_ago is None or not rule.applies_to(snapshot.tier) or (explained and rule.unless_explained):
        return []
    if one_rule and rule.unless_one_rule:
        return []
    if LEVEL_RANK[snapshot.level] < LEVEL_RANK[rule.min_level]:
        return []
    # Risks carry one decimal: 55.3 - 40.3 is 14.999999999999996 in binary floating point.
    jump = round(snapshot.risk - snapshot.risk_7d_ago, 6)
    if jump < rule.min_jump:
        return []
    before, now = snapshot.risk_7d_ago, snapshot.risk
    return [
        _alert(
            snapshot,
            "risk_jump",
            None,
            rule.severity,
            None,
            top_drivers(snapshot.drivers),
            f"Risk up {number(jump, 'en')} points in 7 days ({number(before, 'en')} → {number(now, 'en')})",
            f"Risque en hausse de {number(jump, 'fr')} points en 7 jours "
            f"({number(before, 'fr')} → {number(now, 'fr')})",
        )
    ]


def _driver_rule(
    snapshot: AccountSnapshot, rule_name: str, rule: DriverRule, codes: tuple[str, ...], subject_key: str | None
) -> list[DesiredAlert]:
    if not rule.applies_to(snapshot.tier):
        return []
    by_subject: dict[str | None, list[Driver]] = {}
    for driver in snapshot.drivers:
        if driver.code in codes and driver.points > 0 and driver.points >= rule.min_points:
            subject = _subject(driver, subject_key)
            by_subject.setdefault(subject, []).append(driver)
    found = []
    for subject, hits in by_subject.items():
        ranked = top_drivers(hits, limit=len(hits))
        strongest = ranked[0]
        severity = rule.severity_of(strongest.points)
        if isinstance(rule, DepartureRule):
            successor = strongest.evidence.get("successor")
            if successor == "named" and rule.clear_on_successor:
                continue
            compound = rule.compound_level is not None and LEVEL_RANK[snapshot.level] >= LEVEL_RANK[rule.compound_level]
            if rule.vacant_severity is not None and (successor == "none" or compound):
                severity = rule.vacant_severity
        known = [d.since for d in hits if d.since is not None]
        found.append(
            _alert(
                snapshot,
                rule_name,
                subject,
                severity,
                min(known) if known else None,
                ranked,
                strongest.message_en,
                strongest.message_fr,
            )
        )
    return found


def _subject(driver: Driver, key: str | None) -> str | None:
    if key is None:
        return None
    value = driver.evidence.get(key)
    return None if value is None or value == "" else str(value)


def _renewal_at_risk(snapshot: AccountSnapshot, rule: RenewalRule) -> list[DesiredAlert]:
    severity = rule.severity.get(snapshot.level)
    renewal = snapshot.renewal_date
    if severity is None or renewal is None or not rule.applies_to(snapshot.tier):
        return []
    days = (renewal - snapshot.as_of.astimezone(UTC).date()).days
    if not 0 <= days <= rule.within_days:
        return []
    window_opened = _midnight(renewal - timedelta(days=rule.within_days))
    # Both halves must hold: the later of "entered the window" and "reached the level" is when it became true.
    since = window_opened if snapshot.level_since is None else max(window_opened, snapshot.level_since)
    renewal_drivers = [d for d in snapshot.drivers if d.code == "renewal.near"]
    drivers = top_drivers(d for d in snapshot.drivers if d.code != "renewal.near") + tuple(renewal_drivers)
    level_en, level_fr = LEVEL_WORDS[snapshot.level]
    day_en = "day" if days == 1 else "days"
    day_fr = "jour" if days < 2 else "jours"
    return [
        _alert(
            snapshot,
            "renewal_at_risk",
            None,
            severity,
            since,
            drivers,
            f"Renewal in {days} {day_en} ({renewal.isoformat()}) with {level_en} risk",
            f"Renouvellement dans {days} {day_fr} (le {renewal.strftime('%d/%m/%Y')}) avec un risque {level_fr}",
        )
    ]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)
