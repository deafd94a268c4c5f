"""The hold before auto-resolving, on explicit times: the pure decision, reconciliation with holds, and what a
held alert does (and does not do) in the notification policy."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.config import AlertConfigError, load_rules_config
from alerts.model import DesiredAlert, OpenAlert, dedup_key
from alerts.policy import AlertStatus, Candidate, cleared_notes_owed, due_escalations, inhibit, plan_notifications
from alerts.reconcile import Changes, Clearing, Returned, hold_decision, reconcile
from schemas.vocabulary import Severity
from tests.unit.alerts.helpers import (
    AS_OF,
    CONFIG,
    KAMS,
    OWNERS,
    ago,
    critical,
    open_alert,
    snapshot,
    with_policy,
    with_rule,
)

WEEK = timedelta(days=7)


def week(rule: str) -> timedelta:
    return WEEK


def desired(rule: str = "usage_drop", severity: Severity = "warning", account: str = "acme") -> DesiredAlert:
    return DesiredAlert(
        dedup_key(account, rule), account, rule, None, severity, ago(days=20), (), f"{rule} title", f"{rule} titre"
    )


def clearing(since: datetime, hold: timedelta = WEEK, **kw: object) -> OpenAlert:
    """An open usage_drop alert whose condition has been clear since ``since``, as stored."""
    return open_alert("acme:usage_drop", alert_id=7, clearing_since=since, resolves_at=since + hold, **kw)


# --- the decision ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clearing_since", "hold", "expected"),
    [
        # the condition is found clear now: clear since now, held
        (None, WEEK, (AS_OF, None)),
        # no hold: resolved at once, now
        (None, timedelta(0), (AS_OF, AS_OF)),
        # clear for 3 days of a 7-day hold: still held
        (ago(days=3), WEEK, (ago(days=3), None)),
        # a second before the end of the hold: still held
        (ago(days=7) + timedelta(seconds=1), WEEK, (ago(days=7) + timedelta(seconds=1), None)),
        # exactly at the end of the hold: resolved, dated the end
        (ago(days=7), WEEK, (ago(days=7), AS_OF)),
        # found late (clear for 10 days of 7): resolved, dated clear + hold, not the evaluation's time
        (ago(days=10), WEEK, (ago(days=10), ago(days=3))),
        # a hold in hours
        (ago(hours=13), timedelta(hours=12), (ago(hours=13), ago(hours=1))),
        # an evaluation earlier than the recorded clearing (a replay going back): held, clear since as recorded
        (AS_OF + timedelta(days=1), WEEK, (AS_OF + timedelta(days=1), None)),
    ],
)
def test_hold_decision(
    clearing_since: datetime | None, hold: timedelta, expected: tuple[datetime, datetime | None]
) -> None:
    assert hold_decision(clearing_since, hold, AS_OF) == expected


# --- reconciliation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("open_alerts", "wanted", "expected"),
    [
        # the condition clears: held, state unchanged, nothing resolved
        (
            [open_alert(alert_id=7)],
            [],
            Changes(clearing=(Clearing(7, "acme:usage_drop", "acme", AS_OF, AS_OF + WEEK),)),
        ),
        # still clear within the hold, as recorded: nothing to change
        ([clearing(ago(days=3))], [], Changes()),
        # the hold was reconfigured since it was recorded: the new end is recorded
        (
            [clearing(ago(days=3), hold=timedelta(days=14))],
            [],
            Changes(clearing=(Clearing(7, "acme:usage_drop", "acme", ago(days=3), ago(days=3) + WEEK),)),
        ),
        # the condition comes back within the hold: the same alert goes on, no new one
        (
            [clearing(ago(days=3))],
            [desired()],
            Changes(returned=(Returned(7, "acme:usage_drop", "acme", ago(days=3)),)),
        ),
    ],
)
def test_reconcile_with_a_hold(open_alerts: list[OpenAlert], wanted: list[DesiredAlert], expected: Changes) -> None:
    assert reconcile(wanted, open_alerts, AS_OF, week) == expected


def test_clear_past_the_hold_resolves_dated_its_end_with_the_day_it_cleared() -> None:
    (r,) = reconcile([], [clearing(ago(days=9))], AS_OF, week).resolved
    assert (r.alert_id, r.resolved_at) == (7, ago(days=2))
    assert r.note == "condition clear since 2026-11-11T12:00:00+00:00"


def test_a_condition_back_with_another_severity_continues_the_alert_regraded() -> None:
    changes = reconcile([desired(severity="critical")], [clearing(ago(days=3))], AS_OF, week)
    assert [r.alert_id for r in changes.returned] == [7]
    assert [(c.alert_id, c.severity) for c in changes.severity_changed] == [(7, "critical")]
    assert (changes.opened, changes.resolved, changes.clearing) == ((), (), ())


def test_holds_are_per_rule_and_duplicates_resolve_at_once() -> None:
    holds = {"usage_drop": WEEK, "risk_level": timedelta(0)}
    usage, level = open_alert("acme:usage_drop", alert_id=1), open_alert("acme:risk_level", alert_id=2)
    duplicate = open_alert("acme:usage_drop", alert_id=3, fired_at=ago(days=1))
    changes = reconcile([], [usage, level, duplicate], AS_OF, holds.__getitem__)
    assert [(r.alert_id, r.resolved_at) for r in changes.resolved] == [(2, AS_OF), (3, AS_OF)]
    assert [c.alert_id for c in changes.clearing] == [1]


def apply(changes: Changes, alerts: list[OpenAlert], next_id: int) -> list[OpenAlert]:
    """What the repository does with the changes."""
    gone = {r.alert_id for r in changes.resolved}
    severity = {c.alert_id: c.severity for c in changes.severity_changed}
    held = {c.alert_id: c for c in changes.clearing}
    back = {b.alert_id for b in changes.returned}
    kept = []
    for a in alerts:
        if a.alert_id in gone:
            continue
        a = replace(a, severity=severity.get(a.alert_id, a.severity))
        if (h := held.get(a.alert_id)) is not None:
            a = replace(a, clearing_since=h.since, resolves_at=h.resolves_at)
        if a.alert_id in back:
            a = replace(a, clearing_since=None, resolves_at=None)
        kept.append(a)
    new = [
        OpenAlert(next_id + i, o.alert.dedup_key, "acme", o.alert.rule, None, o.alert.severity, "firing", o.fired_at)
        for i, o in enumerate(changes.opened)
    ]
    return kept + new


_wanted = st.lists(st.sampled_from(["usage_drop", "risk_level", "ticket_surge"]), unique=True)


@given(rounds=st.lists(st.tuples(_wanted, st.floats(0, 5)), min_size=1, max_size=12))
def test_days_of_evaluations_keep_one_alert_per_key_and_resolve_only_after_the_hold(
    rounds: list[tuple[list[str], float]],
) -> None:
    """Whatever comes and goes, evaluated every few days: reconciling twice at once changes nothing the second
    time, and an alert resolves only once its condition has been clear for the hold, dated then."""
    alerts: list[OpenAlert] = []
    at = AS_OF
    next_id = 1
    for rules, step in rounds:
        at += timedelta(days=step)
        wanted = [desired(rule) for rule in rules]
        changes = reconcile(wanted, alerts, at, week)
        for r in changes.resolved:
            (gone,) = [a for a in alerts if a.alert_id == r.alert_id]
            assert gone.clearing_since is not None
            assert r.resolved_at == gone.clearing_since + WEEK <= at
            assert r.dedup_key not in {d.dedup_key for d in wanted}
        alerts = apply(changes, alerts, next_id)
        next_id += len(changes.opened)
        assert not reconcile(wanted, alerts, at, week)
        keys = [a.dedup_key for a in alerts]
        assert len(keys) == len(set(keys))
        assert {d.dedup_key for d in wanted} <= set(keys)


# --- the policy around a held alert ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alert", "due"),
    [
        # notified 25 h ago, not acknowledged, the condition holds: escalated
        (critical(), True),
        # its condition clear, held open: a manager is not called in for a condition that has gone
        (critical(clearing_since=ago(hours=2), resolves_at=ago(hours=2) + WEEK), False),
        # clear since before it was even due: still not
        (critical(clearing_since=ago(hours=30), resolves_at=ago(hours=30) + WEEK), False),
    ],
)
def test_a_held_critical_alert_is_not_escalated(alert: OpenAlert, due: bool) -> None:
    assert bool(due_escalations([alert], KAMS, AS_OF, CONFIG, owners=OWNERS)) is due


def test_escalation_of_a_critical_alert_follows_its_condition_in_the_plan() -> None:
    held = critical(clearing_since=ago(days=1), resolves_at=ago(days=1) + WEEK)
    accounts = {"acme": snapshot(tier="key")}

    def escalations(changes: Changes, alert: OpenAlert) -> list[str]:
        found = plan_notifications(changes, [alert], KAMS, accounts, {}, AS_OF, CONFIG)
        return [n.kind for n in found.notifications if n.kind in ("escalation", "reminder")]

    # clearing now: not escalated
    now_clear = Changes(clearing=(Clearing(5, held.dedup_key, "acme", AS_OF, AS_OF + WEEK),))
    assert escalations(now_clear, critical()) == []
    # back within the hold, still unacknowledged 25 h after it was told: escalated as before
    back = Changes(returned=(Returned(5, held.dedup_key, "acme", ago(days=1)),))
    assert sorted(escalations(back, held)) == ["escalation", "escalation", "reminder", "reminder"]


def status(key: str, **kw: object) -> AlertStatus:
    base = AlertStatus(1, key, key.split(":")[0], "critical", "firing", ago(days=2), None, ago(days=2))
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("source", "folded_into"),
    [
        # a firing critical alert whose condition holds: the new warning is folded into it
        (status("acme:champion_left:C-7"), "acme:champion_left:C-7"),
        # one held with its condition clear: it is on its way out; the warning goes its own way
        (status("acme:champion_left:C-7", clearing_since=ago(days=1)), None),
    ],
)
def test_a_held_critical_alert_folds_nothing(source: AlertStatus, folded_into: str | None) -> None:
    warning = Candidate("acme:usage_drop", "acme", "warning", ago(hours=1))
    _, folded = inhibit([warning], {source.dedup_key: source})
    assert folded.get(warning.dedup_key) == folded_into


def test_the_cleared_note_is_owed_from_the_end_of_the_hold() -> None:
    alert = clearing(ago(days=9), last_notified_at=ago(days=12))
    changes = reconcile([], [alert], AS_OF, week)
    (owed,) = cleared_notes_owed(changes, [alert], KAMS, {"acme": snapshot()}, AS_OF)
    assert (owed.alert_id, owed.owed_since, owed.urgent) == (7, ago(days=2), False)
    # while held, nothing is owed
    assert cleared_notes_owed(reconcile([], [clearing(ago(days=3))], AS_OF, week), [alert], KAMS, {}, AS_OF) == []


# --- configuration ---------------------------------------------------------------------------------------------


def test_the_hold_comes_from_the_policy_or_the_rule() -> None:
    assert CONFIG.resolve_hold("usage_drop") == timedelta(days=CONFIG.policy.resolve_hold_days)
    config = with_rule("champion_left", with_policy(resolve_hold_days=3), resolve_hold_days=0)
    assert config.resolve_hold("usage_drop") == timedelta(days=3)
    assert config.resolve_hold("champion_left") == timedelta(0)
    assert config.resolve_hold("no_such_rule") == timedelta(days=3)


def test_a_negative_hold_is_refused(tmp_path: Path) -> None:
    text = (Path(__file__).parents[3] / "alerts" / "default_rules.yaml").read_text()
    path = tmp_path / "rules.yaml"
    assert "  resolve_hold_days: 14 " in text
    path.write_text(text.replace("  resolve_hold_days: 14 ", "  resolve_hold_days: -1 "))
    with pytest.raises(AlertConfigError) as error:
        load_rules_config(path)
    assert "resolve_hold_days" in str(error.value)
