"""A departure is news, a hand-over is not an emergency: the shipped scoring and rules on explicit times.

A champion, sponsor or decision maker leaving is told in the digest while a successor may still be named
(the scoring's ``successor_grace_days``); it pages only once the grace has passed with the role vacant (a
shorter grace, ``sole_successor_grace_days``, when the departing contact was the account's only decision-level
contact), or at once when other signals have already made the account high; a successor named clears it, at
once (no hold), with a "cleared" note.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from alerts.config import load_rules_config
from alerts.model import AccountSnapshot, OpenAlert
from alerts.reconcile import reconcile
from alerts.rules import evaluate
from health_engine.config import load_scoring_config
from health_engine.model import AccountProfile, AccountSignals, Contact, ContactRole
from health_engine.scoring import score_account
from schemas.vocabulary import Level

SCORING = load_scoring_config(None)
RULES = load_rules_config(None)
GRACE = timedelta(days=SCORING.relationship.successor_grace_days)
SOLE_GRACE = timedelta(days=SCORING.relationship.sole_successor_grace_days)
COMPOUND = RULES.rules.champion_left.compound_level  # the level at which other signals compound on a departure
LEFT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


def person(contact_id: str, role: ContactRole, *, left: datetime | None = None, added: datetime = START) -> Contact:
    return Contact(contact_id, role, left is None, added, left, START + D, name=contact_id)


def account(role: ContactRole, successor_at: datetime | None, *, decision_maker: bool = True) -> AccountSignals:
    """A healthy account whose ``role`` contact leaves at ``LEFT``; a successor is named at ``successor_at``."""
    contacts = [
        person("sponsor", "executive_sponsor", left=LEFT if role == "executive_sponsor" else None),
        person("champion", "champion", left=LEFT if role == "champion" else None),
        person("user", "user"),
    ]
    if decision_maker or role == "decision_maker":
        contacts.append(person("dm", "decision_maker", left=LEFT if role == "decision_maker" else None))
    if successor_at is not None:
        contacts.append(person("successor", role, added=successor_at))
    return AccountSignals(AccountProfile("acme", "key", Decimal("250000")), contacts=tuple(contacts))


RULE = {"champion": "champion_left", "executive_sponsor": "sponsor_left", "decision_maker": "decision_maker_left"}


def departure_alert(
    signals: AccountSignals, as_of: datetime, role: ContactRole, level: Level | None = None
) -> tuple[str | None, str | None]:
    """(the departure driver's ``successor`` evidence, the departure rule's severity or None) at ``as_of``."""
    visible = replace(signals, contacts=tuple(c for c in signals.contacts if c.added_at <= as_of))  # type: ignore[operator]
    score = score_account(visible, as_of, SCORING)
    code = {"champion": "relationship.champion_left", "executive_sponsor": "relationship.sponsor_left"}.get(
        role, "relationship.decision_maker_left"
    )
    driver = next((d for d in score.drivers if d.code == code), None)
    snapshot = AccountSnapshot(
        "acme", "Acme", "key", Decimal("250000"), "EUR", None, "kam", score.risk, level or score.level, None, None,
        score.drivers, as_of,
    )  # fmt: skip
    alert = next((a for a in evaluate(snapshot, RULES) if a.rule == RULE[role]), None)
    successor = driver.evidence.get("successor") if driver is not None else None
    return (str(successor) if successor is not None else None), (alert.severity if alert is not None else None)


# (case, role, successor named after LEFT, evaluated after LEFT, another decision-level contact, level forced,
#  expected successor evidence, expected severity: None means no alert)
CASES = [
    ("news the next day", "champion", None, D, True, None, "pending", "warning"),
    ("still news just before the grace ends", "champion", None, GRACE - H, True, None, "pending", "warning"),
    ("vacant after the grace: a page", "champion", None, GRACE + H, True, None, "none", "critical"),
    ("named within the grace: not yet", "champion", 3 * D, 2 * D, True, None, "pending", "warning"),
    ("named within the grace: cleared", "champion", 3 * D, 4 * D, True, None, "named", None),
    ("named the same day: cleared", "champion", 2 * H, 3 * H, True, None, "named", None),
    ("named late: a page meanwhile", "champion", GRACE + 5 * D, GRACE + D, True, None, "none", "critical"),
    ("named late: then cleared", "champion", GRACE + 5 * D, GRACE + 6 * D, True, None, "named", None),
    ("other signals compound: a page at once", "champion", None, D, True, COMPOUND, "pending", "critical"),
    ("a sponsor with a decision maker left: news", "executive_sponsor", None, D, True, None, "pending", "warning"),
    ("the only decision-level contact: news first", "executive_sponsor", None, D, False, None, "pending", "warning"),
    (
        "the only one, vacant after its shorter grace: a page",
        "executive_sponsor",
        None,
        SOLE_GRACE + H,
        False,
        None,
        "none",
        "critical",
    ),
    (
        "not the only one: still news by then",
        "executive_sponsor",
        None,
        SOLE_GRACE + H,
        True,
        None,
        "pending",
        "warning",
    ),
    ("the only one, replaced: cleared", "executive_sponsor", 2 * D, 3 * D, False, None, "named", None),
    ("a decision maker, vacant", "decision_maker", None, GRACE + D, True, None, "none", "critical"),
]


@pytest.mark.parametrize(
    ("role", "successor_after", "evaluated_after", "decision_maker", "level", "successor", "severity"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_hand_over_grace(
    role: ContactRole,
    successor_after: timedelta | None,
    evaluated_after: timedelta,
    decision_maker: bool,
    level: Level | None,
    successor: str,
    severity: str | None,
) -> None:
    signals = account(role, None if successor_after is None else LEFT + successor_after, decision_maker=decision_maker)
    assert departure_alert(signals, LEFT + evaluated_after, role, level) == (successor, severity)


def test_the_grace_is_the_scoring_configs() -> None:
    longer = SCORING.model_copy(
        update={"relationship": SCORING.relationship.model_copy(update={"successor_grace_days": 30})}
    )
    signals = account("champion", None)
    as_of = LEFT + GRACE + D
    score = score_account(signals, as_of, longer)
    driver = next(d for d in score.drivers if d.code == "relationship.champion_left")
    assert driver.evidence["successor"] == "pending"


def test_a_successor_named_resolves_the_departure_at_once_with_a_note() -> None:
    """The departure rules hold nothing before resolving: the named successor is the news that clears it."""
    open_alert = OpenAlert(1, "acme:champion_left:champion", "acme", "champion_left", "champion", "warning", "firing",
                           LEFT)  # fmt: skip
    as_of = LEFT + 3 * D
    signals = account("champion", LEFT + 2 * D)
    score = score_account(signals, as_of, SCORING)
    snapshot = AccountSnapshot(
        "acme", "Acme", "key", Decimal("250000"), "EUR", None, "kam", score.risk, score.level, None, None,
        score.drivers, as_of,
    )  # fmt: skip
    changes = reconcile(evaluate(snapshot, RULES), [open_alert], as_of, RULES.resolve_hold)
    assert [r.dedup_key for r in changes.resolved] == ["acme:champion_left:champion"]
    assert changes.resolved[0].resolved_at == as_of
    assert changes.resolved[0].note == "condition cleared"
