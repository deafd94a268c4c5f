"""The post-mortem of a lost account, pure: for each rule, when it would have fired (the stored signals replayed
through the scoring and the rules), when it did, when the KAM was told, acknowledged and acted; the lead time
kept before the outcome or lost on the way; and the rules that stayed silent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from alerts.config import AlertsConfig
from schemas.vocabulary import Tier

DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class StoredAlert:
    alert_id: int
    rule: str
    severity: str
    fired_at: datetime
    title_en: str
    title_fr: str


@dataclass(frozen=True, slots=True)
class Action:
    """A person's step on an alert (acknowledge, snooze, resolve, feedback): who, how and when."""

    alert_id: int
    at: datetime
    what: str
    actor: str
    via: str


@dataclass(frozen=True, slots=True)
class Sent:
    """A notification that went out, with the alerts it carried."""

    alert_ids: tuple[int, ...]
    channel: str
    kind: str
    recipient: str
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class RuleStory:
    rule: str
    would_fire_at: datetime | None
    """When the rule's condition first held in the window, in hindsight (replayed with today's rules)."""
    fired_at: datetime | None
    """When the first stored alert of the rule in the window fired (event time)."""
    told_at: datetime | None
    """When the first notification carrying such an alert went out."""
    acknowledged_at: datetime | None
    acted: tuple[Action, ...]
    lead_days: float | None
    """From the KAM being told (else the alert firing) to the outcome."""
    lost_days: float | None
    """From when the rule would have fired to when the KAM was told (or the outcome, if never told)."""


@dataclass(frozen=True, slots=True)
class PostMortem:
    outcome_at: datetime
    first_told_at: datetime | None
    lead_days: float | None
    """From the first notification about the account in the window to the outcome (None: never told)."""
    possible_lead_days: float | None
    """From the first moment any rule would have fired to the outcome."""
    rules: tuple[RuleStory, ...]
    """The rules that fired or would have fired, the earliest first."""
    silent: tuple[str, ...]
    """Rules that apply to the account's tier and neither fired nor would have fired."""
    notifications: tuple[Sent, ...]


def _days(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() / DAY_S, 1)


def rules_for(config: AlertsConfig, tier: Tier) -> list[str]:
    """The rules that may fire on an account of ``tier`` (enabled, and for that tier)."""
    return [name for name in type(config.rules).model_fields if getattr(config.rules, name).applies_to(tier)]


def first_firings(firings: Iterable[tuple[str, datetime]]) -> dict[str, datetime]:
    """The earliest moment each rule's condition held, from (rule, since when its condition held) pairs."""
    found: dict[str, datetime] = {}
    for rule, since in firings:
        if rule not in found or since < found[rule]:
            found[rule] = since
    return found


def post_mortem(
    outcome_at: datetime,
    would_fire: Mapping[str, datetime],
    alerts: Sequence[StoredAlert],
    actions: Sequence[Action],
    sent: Sequence[Sent],
    applicable: Sequence[str],
) -> PostMortem:
    """Assemble the story of each rule from what would have fired, what fired and what was sent and done."""
    first_alert: dict[str, StoredAlert] = {}
    for alert in sorted(alerts, key=lambda a: (a.fired_at, a.alert_id)):
        first_alert.setdefault(alert.rule, alert)
    ids_by_rule: dict[str, set[int]] = {}
    for alert in alerts:
        ids_by_rule.setdefault(alert.rule, set()).add(alert.alert_id)
    ordered_sent = sorted(sent, key=lambda s: s.sent_at)
    stories = []
    for rule in sorted({*would_fire, *first_alert}):
        ids = ids_by_rule.get(rule, set())
        told = next((s.sent_at for s in ordered_sent if ids & set(s.alert_ids)), None)
        done = tuple(sorted((a for a in actions if a.alert_id in ids), key=lambda a: a.at))
        acknowledged = next((a.at for a in done if a.what in ("acknowledged", "snoozed")), None)
        fired = first_alert[rule].fired_at if rule in first_alert else None
        possible = would_fire.get(rule)
        stories.append(
            RuleStory(
                rule=rule,
                would_fire_at=possible,
                fired_at=fired,
                told_at=told,
                acknowledged_at=acknowledged,
                acted=done,
                lead_days=_days(told or fired, outcome_at),
                lost_days=_days(possible, told or outcome_at) if possible is not None else None,
            )
        )
    stories.sort(key=lambda s: (min(m for m in (s.would_fire_at, s.fired_at) if m is not None), s.rule))
    told_at = ordered_sent[0].sent_at if ordered_sent else None
    earliest = min(would_fire.values(), default=None)
    spoke = {s.rule for s in stories}
    return PostMortem(
        outcome_at=outcome_at,
        first_told_at=told_at,
        lead_days=_days(told_at, outcome_at),
        possible_lead_days=_days(earliest, outcome_at),
        rules=tuple(stories),
        silent=tuple(rule for rule in applicable if rule not in spoke),
        notifications=tuple(ordered_sent),
    )
