"""Reconciliation: open, re-grade, resolve, one alert per key, fired_at at the condition's time, idempotence."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.model import DesiredAlert, OpenAlert, dedup_key
from alerts.reconcile import Changes, Opened, close_accounts, reconcile
from schemas.vocabulary import Closure, Severity
from tests.unit.alerts.helpers import AS_OF, ago, open_alert


def desired(
    rule: str = "usage_drop", severity: Severity = "warning", since_days: float = 3, **kw: object
) -> DesiredAlert:
    subject = kw.pop("subject", None)
    assert subject is None or isinstance(subject, str)
    account = str(kw.pop("account_id", "acme"))
    return DesiredAlert(
        dedup_key=dedup_key(account, rule, subject),
        account_id=account,
        rule=rule,
        subject=subject,
        severity=severity,
        condition_since=ago(days=since_days),
        drivers=(),
        title_en=f"{rule} title",
        title_fr=f"{rule} titre",
    )


def test_new_condition_opens_an_alert_at_the_condition_time() -> None:
    changes = reconcile([desired(since_days=3)], [], AS_OF)
    (opened,) = changes.opened
    assert opened.alert.dedup_key == "acme:usage_drop"
    assert opened.fired_at == ago(days=3)  # the event time, not the evaluation time
    assert changes.severity_changed == ()
    assert changes.resolved == ()


def test_fired_at_is_never_later_than_as_of() -> None:
    (opened,) = reconcile([desired(since_days=-1)], [], AS_OF).opened
    assert opened.fired_at == AS_OF


def test_unchanged_alert_is_left_alone_whatever_its_state() -> None:
    existing = open_alert("acme:usage_drop", state="acknowledged", snoozed_until=AS_OF + timedelta(days=3))
    assert not reconcile([desired()], [existing], AS_OF)


def test_severity_change_updates_the_existing_alert() -> None:
    existing = open_alert("acme:usage_drop", alert_id=7, severity="warning")
    changes = reconcile([desired(severity="critical")], [existing], AS_OF)
    (changed,) = changes.severity_changed
    assert (changed.alert_id, changed.previous, changed.severity, changed.raised) == (7, "warning", "critical", True)
    assert changes.opened == ()
    assert changes.resolved == ()
    (lowered,) = reconcile([desired(severity="info")], [existing], AS_OF).severity_changed
    assert not lowered.raised


def test_cleared_condition_is_resolved_with_a_note() -> None:
    existing = open_alert("acme:champion_left:C-7", alert_id=9, severity="critical")
    (resolved,) = reconcile([], [existing], AS_OF).resolved
    assert (resolved.alert_id, resolved.resolved_at, resolved.subject) == (9, AS_OF, "C-7")
    assert resolved.note == "condition cleared"


def test_a_closed_account_resolves_every_open_alert_dated_its_closure_with_the_reason() -> None:
    lost = Closure("acme", ago(days=1), "moved to a competitor")
    mine = [open_alert("acme:champion_left:C-7", alert_id=9), open_alert("acme:risk_level", alert_id=10)]
    other = open_alert("globex:risk_level", alert_id=11)
    changes = close_accounts([*mine, other], {"acme": lost})
    assert [(r.alert_id, r.resolved_at) for r in changes.resolved] == [(9, ago(days=1)), (10, ago(days=1))]
    assert {r.note for r in changes.resolved} == {"account lost on 2026-11-19: moved to a competitor"}
    assert (changes.opened, changes.clearing, changes.severity_changed) == ((), (), ())
    # An alert that fired after the closure (the churn reached kamwatch late) resolves when it fired, not before.
    late = open_alert("acme:usage_drop", alert_id=12, fired_at=AS_OF)
    assert [r.resolved_at for r in close_accounts([late], {"acme": lost}).resolved] == [AS_OF]


def test_subjects_are_separate_alerts() -> None:
    claire = open_alert("acme:champion_left:C-7", alert_id=1)
    changes = reconcile([desired("champion_left", subject="C-9")], [claire], AS_OF)
    assert [o.alert.dedup_key for o in changes.opened] == ["acme:champion_left:C-9"]
    assert [r.dedup_key for r in changes.resolved] == ["acme:champion_left:C-7"]


def test_one_alert_per_dedup_key() -> None:
    # Two desired alerts with one key: the more severe one stands.
    changes = reconcile([desired(severity="warning"), desired(severity="critical", since_days=1)], [], AS_OF)
    assert [(o.alert.severity, o.fired_at) for o in changes.opened] == [("critical", ago(days=1))]
    # Two open alerts with one key (should never be): the older stays, the other is resolved.
    older = open_alert("acme:usage_drop", alert_id=1, fired_at=ago(days=5))
    newer = open_alert("acme:usage_drop", alert_id=2, fired_at=ago(days=1))
    changes = reconcile([desired()], [newer, older], AS_OF)
    assert changes.opened == ()
    assert [r.alert_id for r in changes.resolved] == [2]


def test_changes_are_sorted_and_naive_time_is_refused() -> None:
    changes = reconcile([desired("usage_drop"), desired("nps_detractor"), desired("ticket_surge")], [], AS_OF)
    assert [o.alert.rule for o in changes.opened] == ["nps_detractor", "ticket_surge", "usage_drop"]
    with pytest.raises(ValueError, match="timezone-aware"):
        reconcile([], [], AS_OF.replace(tzinfo=None))


def apply(changes: Changes, alerts: list[OpenAlert], next_id: int) -> list[OpenAlert]:
    """What the repository does with the changes."""
    gone = {r.alert_id for r in changes.resolved}
    severity = {c.alert_id: c.severity for c in changes.severity_changed}
    kept = [replace(a, severity=severity.get(a.alert_id, a.severity)) for a in alerts if a.alert_id not in gone]
    return kept + [_stored(o, next_id + i) for i, o in enumerate(changes.opened)]


def _stored(o: Opened, alert_id: int) -> OpenAlert:
    a = o.alert
    return OpenAlert(alert_id, a.dedup_key, a.account_id, a.rule, a.subject, a.severity, "firing", o.fired_at)


_desired = st.builds(
    desired,
    rule=st.sampled_from(["usage_drop", "risk_level", "champion_left"]),
    severity=st.sampled_from(["info", "warning", "critical"]),
    since_days=st.floats(-2, 30),
    subject=st.sampled_from([None, "C-1", "C-2"]),
    account_id=st.sampled_from(["acme", "globex"]),
)
_open = st.builds(
    open_alert,
    key=st.sampled_from(["acme:usage_drop", "acme:risk_level", "acme:champion_left:C-1", "globex:usage_drop"]),
    alert_id=st.integers(1, 1000),
    severity=st.sampled_from(["info", "warning", "critical"]),
    state=st.sampled_from(["firing", "acknowledged"]),
)


@given(wanted=st.lists(_desired, max_size=8), existing=st.lists(_open, max_size=6, unique_by=lambda a: a.alert_id))
def test_reconcile_is_idempotent(wanted: list[DesiredAlert], existing: list[OpenAlert]) -> None:
    changes = reconcile(wanted, existing, AS_OF)
    after = apply(changes, existing, next_id=10_000)
    assert not reconcile(wanted, after, AS_OF)
    keys = [a.dedup_key for a in after]
    assert len(keys) == len(set(keys))  # one open alert per key
    assert set(keys) == {d.dedup_key for d in wanted}
    assert all(o.fired_at <= AS_OF for o in changes.opened)
