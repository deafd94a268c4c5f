"""Notification policy, stage by stage (table-driven, a comment per case), then the whole plan."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from alerts.model import AccountSnapshot, DesiredAlert, Kam, OpenAlert, dedup_key
from alerts.policy import (
    AlertStatus,
    Candidate,
    ClearedNote,
    UrgentGroup,
    alerts_after,
    apply_budget,
    candidates,
    channels_for,
    cleared_notes_may_go,
    cleared_notes_owed,
    dedup,
    deliveries,
    drop_snoozed,
    due_escalations,
    group_urgent,
    inhibit,
    local_day_bounds,
    next_digest_time,
    plan_notifications,
    split_urgent,
)
from alerts.reconcile import Changes, Opened, Resolved, SeverityChanged
from schemas.vocabulary import Severity
from tests.unit.alerts.helpers import AS_OF, CONFIG, KAMS, OWNERS, ago, critical, kam, open_alert, snapshot, with_policy

# --- time --------------------------------------------------------------------------------------------------


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "as_of", "expected"),
    [
        # Paris in winter (UTC+1): before 9:00 local -> today; after -> tomorrow
        ("Europe/Paris", utc(2026, 11, 20, 7, 0), utc(2026, 11, 20, 8, 0)),
        ("Europe/Paris", utc(2026, 11, 20, 12, 0), utc(2026, 11, 21, 8, 0)),
        # exactly at the digest time: that digest is gone, the next one is tomorrow
        ("Europe/Paris", utc(2026, 11, 20, 8, 0), utc(2026, 11, 21, 8, 0)),
        # the night before the spring-forward change (29 March 2026): 9:00 CEST is 7:00 UTC
        ("Europe/Paris", utc(2026, 3, 28, 10, 0), utc(2026, 3, 29, 7, 0)),
        # the day before the fall-back change (25 October 2026): 9:00 CET is 8:00 UTC
        ("Europe/Paris", utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 8, 0)),
        # New York springs forward on 8 March 2026: 9:00 EDT is 13:00 UTC (14:00 the day before)
        ("America/New_York", utc(2026, 3, 7, 15, 0), utc(2026, 3, 8, 13, 0)),
        # and falls back on 1 November 2026: 9:00 EST is 14:00 UTC (13:00 the day before)
        ("America/New_York", utc(2026, 10, 31, 14, 0), utc(2026, 11, 1, 14, 0)),
        # a UTC time that is still the previous evening in New York
        ("America/New_York", utc(2026, 11, 21, 2, 0), utc(2026, 11, 21, 14, 0)),
    ],
)
def test_next_digest_time(zone: str, as_of: datetime, expected: datetime) -> None:
    assert next_digest_time(zone, 9, as_of) == expected


def test_digest_hour_inside_the_spring_forward_gap_goes_right_after_it() -> None:
    # 2:00 does not exist in Paris on 29 March 2026; zoneinfo reads it with the winter offset: 1:00 UTC (3:00 CEST).
    assert next_digest_time("Europe/Paris", 2, utc(2026, 3, 28, 23, 30)) == utc(2026, 3, 29, 1, 0)


@pytest.mark.parametrize(
    ("zone", "as_of", "hours"),
    [
        ("Europe/Paris", utc(2026, 11, 20, 12, 0), 24),
        ("Europe/Paris", utc(2026, 3, 29, 12, 0), 23),  # spring forward
        ("Europe/Paris", utc(2026, 10, 25, 12, 0), 25),  # fall back
        ("America/New_York", utc(2026, 11, 1, 12, 0), 25),
    ],
)
def test_local_day_bounds(zone: str, as_of: datetime, hours: int) -> None:
    start, end = local_day_bounds(zone, as_of)
    assert start <= as_of < end
    assert end - start == timedelta(hours=hours)


# --- stages ------------------------------------------------------------------------------------------------


def cand(key: str = "acme:usage_drop", severity: Severity = "warning", days: float = 1) -> Candidate:
    return Candidate(key, key.split(":")[0], severity, ago(days=days))


def status(key: str, severity: Severity = "critical", **kw: object) -> AlertStatus:
    defaults: dict[str, object] = {"state": "firing", "fired_at": ago(days=2), "snoozed_until": None}
    defaults.update(kw)
    return AlertStatus(
        alert_id=1,
        dedup_key=key,
        account_id=key.split(":")[0],
        severity=severity,
        last_notified_at=None,
        **defaults,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("snoozed_until", "kept"),
    [
        (None, True),  # never snoozed
        (AS_OF - timedelta(seconds=1), True),  # snooze over
        (AS_OF, True),  # snooze ends now
        (AS_OF + timedelta(days=7), False),  # snoozed
    ],
)
def test_drop_snoozed(snoozed_until: datetime | None, kept: bool) -> None:
    statuses = {"acme:usage_drop": status("acme:usage_drop", "warning", snoozed_until=snoozed_until)}
    now, snoozed = drop_snoozed([cand()], statuses, AS_OF)
    assert (len(now), len(snoozed)) == ((1, 0) if kept else (0, 1))


def test_dedup_keeps_the_most_severe_then_earliest() -> None:
    found = dedup([cand(days=1), cand(severity="critical", days=0.5), cand(severity="critical", days=2)])
    assert found == [cand(severity="critical", days=2)]


@pytest.mark.parametrize(
    ("statuses", "candidate", "folded_into"),
    [
        # a firing critical alert on the account: the warning is folded into it
        ([status("acme:champion_left:C-7")], cand("acme:usage_drop"), "acme:champion_left:C-7"),
        # acknowledged critical: the KAM is on it, other alerts go their usual way
        ([status("acme:champion_left:C-7", state="acknowledged")], cand("acme:usage_drop"), None),
        # a critical alert on another account inhibits nothing here
        ([status("globex:risk_level")], cand("acme:usage_drop"), None),
        # a warning source inhibits nothing
        ([status("acme:risk_level", "warning")], cand("acme:usage_drop", "info"), None),
        # critical alerts are never folded, even next to another critical one
        ([status("acme:risk_level")], cand("acme:champion_left:C-7", "critical"), None),
        # with two critical sources, the oldest one takes the fold
        (
            [status("acme:risk_level", fired_at=ago(days=1)), status("acme:sponsor_left:C-2", fired_at=ago(days=4))],
            cand("acme:usage_drop", "info"),
            "acme:sponsor_left:C-2",
        ),
    ],
)
def test_inhibit(statuses: list[AlertStatus], candidate: Candidate, folded_into: str | None) -> None:
    kept, folded = inhibit([candidate], {s.dedup_key: s for s in statuses})
    assert folded.get(candidate.dedup_key) == folded_into
    assert kept == ([] if folded_into else [candidate])


def test_split_urgent_and_group_per_account() -> None:
    urgent, later = split_urgent([cand("a:x", "critical"), cand("a:y", "warning"), cand("b:z", "info")])
    assert [c.dedup_key for c in urgent] == ["a:x"]
    assert [c.dedup_key for c in later] == ["a:y", "b:z"]
    groups = group_urgent(
        [cand("a:x", "critical", days=1), cand("a:w", "critical", days=3), cand("b:z", "critical", days=2)],
        {"a:y": "a:x"},
        {"a": "kam-lea", "b": None},
    )
    assert [(g.account_id, g.keys, g.folded, g.kam_id) for g in groups] == [
        ("a", ("a:w", "a:x"), ("a:y",), "kam-lea"),  # oldest first, within and across groups
        ("b", ("b:z",), (), None),
    ]


def group(account: str, kam_id: str | None, days: float) -> UrgentGroup:
    return UrgentGroup(account, kam_id, (f"{account}:risk_level",), (), ago(days=days))


@pytest.mark.parametrize(
    ("sent_today", "budget", "now", "overflow"),
    [
        ({}, 3, ["c", "b", "a"], []),  # within budget, oldest first
        ({"kam-lea": 2}, 3, ["c", "b"], ["a"]),  # one left for Léa: her oldest (b) goes; Tom's c is his own budget
        ({"kam-lea": 3}, 3, ["c"], ["b", "a"]),  # Léa's budget spent today
        ({}, 0, [], ["c", "b", "a"]),  # no immediate notifications at all
    ],
)
def test_apply_budget(sent_today: dict[str, int], budget: int, now: list[str], overflow: list[str]) -> None:
    groups = [group("c", "kam-tom", 3), group("b", "kam-lea", 2), group("a", "kam-lea", 1)]
    sent, over = apply_budget(groups, sent_today, budget)
    assert [g.account_id for g in sent] == now
    assert [g.account_id for g in over] == overflow


def test_groups_without_kam_are_not_budgeted() -> None:
    sent, over = apply_budget([group("a", None, 1)], {}, 0)
    assert (len(sent), len(over)) == (1, 0)


@pytest.mark.parametrize(("slack", "channels"), [("U1", ("slack", "email")), (None, ("email",))])
def test_channels_for(slack: str | None, channels: tuple[str, ...]) -> None:
    assert channels_for(kam(slack_user_id=slack)) == channels


# --- escalation --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alert", "kams", "due"),
    [
        # notified 25 h ago, not acknowledged: escalated to Léa's manager
        (critical(), KAMS, True),
        # notified 23 h ago: not yet
        (critical(last_notified_at=ago(hours=23)), KAMS, False),
        # exactly at the delay
        (critical(last_notified_at=ago(hours=24)), KAMS, True),
        # acknowledged in time
        (critical(state="acknowledged", acknowledged_at=ago(hours=20)), KAMS, False),
        # never twice
        (critical(escalated_at=ago(hours=1)), KAMS, False),
        # only critical alerts
        (critical(severity="warning"), KAMS, False),
        # never notified yet (still in the outbox): the KAM cannot be late
        (critical(last_notified_at=None), KAMS, False),
        # snoozed by the KAM
        (critical(snoozed_until=AS_OF + timedelta(days=2)), KAMS, False),
        # the snooze ended 2 h ago: the delay counts from then
        (critical(last_notified_at=ago(days=8), snoozed_until=ago(hours=2)), KAMS, False),
        (critical(last_notified_at=ago(days=8), snoozed_until=ago(hours=30)), KAMS, True),
        # no manager
        (critical(), {"kam-lea": kam("kam-lea", manager_kam_id=None)}, False),
        # a manager we know nothing about: nowhere to send
        (critical(), {"kam-lea": kam("kam-lea")}, False),
    ],
)
def test_due_escalations(alert: OpenAlert, kams: dict[str, Kam], due: bool) -> None:
    found = due_escalations([alert], kams, AS_OF, CONFIG, owners=OWNERS)
    assert bool(found) is due
    if due:
        (e,) = found
        assert (e.alert_id, e.kam_id, e.manager_kam_id) == (5, "kam-lea", "kam-marc")
        assert e.due_at <= AS_OF


def test_escalation_delay_is_configurable() -> None:
    config = with_policy(escalation_delay_hours=48.0)
    assert due_escalations([critical()], KAMS, AS_OF, config, owners=OWNERS) == ()
    assert due_escalations([critical(last_notified_at=ago(hours=49))], KAMS, AS_OF, config, owners=OWNERS)


# --- the whole plan ----------------------------------------------------------------------------------------

TEAM = CONFIG.policy.team_channel
PARIS_DIGEST = utc(2026, 11, 21, 8, 0)  # next 9:00 in Paris after AS_OF (12:00 UTC, 20 November)


def opened(rule: str, severity: Severity, account: str = "acme", subject: str | None = None) -> Opened:
    key = dedup_key(account, rule, subject)
    d = DesiredAlert(key, account, rule, subject, severity, ago(days=1), (), "t", "t")
    return Opened(d, ago(days=1))


def plan(
    changes: Changes,
    open_alerts: list[OpenAlert] | None = None,
    accounts: dict[str, AccountSnapshot] | None = None,
    kams: dict[str, Kam] | None = None,
    sent_today: dict[str, int] | None = None,
    config: object = CONFIG,
    waiting: tuple[ClearedNote, ...] = (),
    digest_news: frozenset[str] = frozenset(),
    as_of: datetime = AS_OF,
) -> list[tuple[str, str, str, tuple[str, ...], datetime]]:
    from alerts.config import AlertsConfig

    assert isinstance(config, AlertsConfig)
    found = plan_notifications(
        changes,
        open_alerts or [],
        KAMS if kams is None else kams,
        {"acme": snapshot()} if accounts is None else accounts,
        sent_today or {},
        as_of,
        config,
        waiting=waiting,
        digest_news=digest_news,
    )
    return [(n.kind, n.channel, n.recipient, n.alert_dedup_keys, n.send_at) for n in found.notifications]


def test_critical_on_a_strategic_account_goes_out_at_once_to_kam_and_team_channel() -> None:
    key = "acme:champion_left:C-7"
    assert TEAM is not None
    assert plan(Changes(opened=(opened("champion_left", "critical", subject="C-7"),))) == [
        ("immediate", "slack", "kam-lea", (key,), AS_OF),
        ("immediate", "email", "kam-lea", (key,), AS_OF),
        ("immediate", "team_channel", TEAM, (key,), AS_OF),
    ]


def test_critical_on_a_key_account_skips_the_team_channel() -> None:
    found = plan(Changes(opened=(opened("risk_level", "critical"),)), accounts={"acme": snapshot(tier="key")})
    assert [(k, ch) for k, ch, *_ in found] == [("immediate", "slack"), ("immediate", "email")]


def test_warning_waits_for_the_digest_at_the_kams_local_hour() -> None:
    assert plan(Changes(opened=(opened("usage_drop", "warning"),))) == [
        ("digest", "slack", "kam-lea", ("acme:usage_drop",), PARIS_DIGEST),
        ("digest", "email", "kam-lea", ("acme:usage_drop",), PARIS_DIGEST),
    ]
    new_york = {"kam-lea": kam("kam-lea", timezone="America/New_York", slack_user_id=None)}
    assert plan(Changes(opened=(opened("usage_drop", "info"),)), kams=new_york) == [
        ("digest", "email", "kam-lea", ("acme:usage_drop",), utc(2026, 11, 20, 14, 0)),  # 7:00 there now
    ]


def test_lower_alerts_opened_with_a_critical_one_are_folded_into_its_message() -> None:
    changes = Changes(opened=(opened("risk_level", "critical"), opened("usage_drop", "warning")))
    found = plan_notifications(changes, [], KAMS, {"acme": snapshot(tier="key")}, {}, AS_OF, CONFIG).notifications
    assert [(n.kind, n.channel, n.alert_dedup_keys, n.folded_into) for n in found] == [
        ("immediate", "slack", ("acme:risk_level", "acme:usage_drop"), None),
        ("immediate", "email", ("acme:risk_level", "acme:usage_drop"), None),
        ("folded", "slack", ("acme:usage_drop",), "acme:risk_level"),
    ]
    assert deliveries(found) == {"acme:risk_level": "immediate", "acme:usage_drop": "folded"}


def test_warning_while_a_critical_alert_fires_is_only_recorded_as_folded() -> None:
    firing = open_alert("acme:risk_level", alert_id=3, severity="critical", last_notified_at=ago(hours=2))
    found = plan(Changes(opened=(opened("nps_detractor", "warning"),)), open_alerts=[firing])
    assert found == [("folded", "slack", "kam-lea", ("acme:nps_detractor",), AS_OF)]


def test_budget_overflow_goes_to_the_digest_but_still_reaches_the_team_channel() -> None:
    assert TEAM is not None
    found = plan(Changes(opened=(opened("risk_level", "critical"),)), sent_today={"kam-lea": 3})
    assert found == [
        ("immediate", "team_channel", TEAM, ("acme:risk_level",), AS_OF),
        ("digest", "slack", "kam-lea", ("acme:risk_level",), PARIS_DIGEST),
        ("digest", "email", "kam-lea", ("acme:risk_level",), PARIS_DIGEST),
    ]


def test_budget_counts_one_message_per_account() -> None:
    changes = Changes(
        opened=(
            opened("risk_level", "critical"),
            opened("champion_left", "critical", subject="C-7"),
            opened("risk_level", "critical", account="globex"),
        )
    )
    accounts = {"acme": snapshot(tier="key"), "globex": snapshot(account_id="globex", tier="key")}
    found = plan(changes, accounts=accounts, sent_today={"kam-lea": 2}, kams={"kam-lea": kam(slack_user_id=None)})
    assert [(kind, keys) for kind, _, _, keys, _ in found] == [
        ("immediate", ("acme:champion_left:C-7", "acme:risk_level")),
        ("digest", ("globex:risk_level",)),
    ]


def test_raised_to_critical_is_notified_unless_snoozed() -> None:
    d = opened("usage_drop", "critical").alert
    raised = Changes(severity_changed=(SeverityChanged(4, d.dedup_key, "acme", "warning", "critical", d),))
    existing = open_alert("acme:usage_drop", alert_id=4, last_notified_at=ago(days=1))
    assert [k for k, *_ in plan(raised, open_alerts=[existing], accounts={"acme": snapshot(tier="key")})] == [
        "immediate",
        "immediate",
    ]
    snoozed = open_alert("acme:usage_drop", alert_id=4, snoozed_until=AS_OF + timedelta(days=6))
    assert plan(raised, open_alerts=[snoozed]) == []
    lowered = Changes(severity_changed=(SeverityChanged(4, d.dedup_key, "acme", "critical", "warning", d),))
    assert plan(lowered, open_alerts=[existing]) == []


def resolved(alert: OpenAlert) -> Resolved:
    return Resolved(alert.alert_id, alert.dedup_key, alert.account_id, alert.rule, alert.subject, AS_OF, "r")


@pytest.mark.parametrize(
    ("alert", "expected"),
    [
        # a critical alert the KAM heard of: told at once, and the team channel too (strategic account)
        (
            open_alert("acme:risk_level", severity="critical", last_notified_at=ago(days=1)),
            [("resolved", "slack", AS_OF), ("resolved", "email", AS_OF), ("resolved", "team_channel", AS_OF)],
        ),
        # a warning the KAM heard of: no digest for that alone (the note waits for one with news, below)
        (open_alert("acme:usage_drop", last_notified_at=ago(days=1)), []),
        # a warning whose digest has not gone out yet: cleared in that digest, which then does not list it as live
        (
            open_alert("acme:usage_drop", last_notified_at=PARIS_DIGEST),
            [("resolved", "slack", PARIS_DIGEST), ("resolved", "email", PARIS_DIGEST)],
        ),
        # a critical alert over the budget, waiting for the digest: cleared in it, not at once
        (
            open_alert("acme:risk_level", severity="critical", last_notified_at=PARIS_DIGEST),
            [("resolved", "slack", PARIS_DIGEST), ("resolved", "email", PARIS_DIGEST)],
        ),
        # never notified (folded, or still waiting for the digest): nothing to take back
        (open_alert("acme:usage_drop"), []),
        # snoozed: the KAM asked for quiet
        (open_alert("acme:usage_drop", last_notified_at=ago(days=1), snoozed_until=AS_OF + timedelta(days=1)), []),
    ],
)
def test_resolved_notifications(alert: OpenAlert, expected: list[tuple[str, str, datetime]]) -> None:
    found = plan(Changes(resolved=(resolved(alert),)), open_alerts=[alert])
    assert [(kind, channel, at) for kind, channel, _, _, at in found] == expected
    assert all(keys == (alert.dedup_key,) for _, _, _, keys, _ in found)


def test_no_escalation_for_an_alert_these_changes_resolve_or_lower() -> None:
    alert = critical()
    assert plan(Changes(resolved=(resolved(alert),)), open_alerts=[alert], kams=KAMS)[0][0] == "resolved"
    d = opened("champion_left", "warning", subject="C-7").alert
    lowered = SeverityChanged(5, alert.dedup_key, "acme", "critical", "warning", d)
    assert plan(Changes(severity_changed=(lowered,)), open_alerts=[alert]) == []


def test_due_escalation_goes_to_the_manager_with_a_reminder_to_the_kam() -> None:
    marc = kam("kam-marc", name="Marc Petit", manager_kam_id=None, slack_user_id=None)
    kams = {"kam-lea": kam("kam-lea"), "kam-marc": marc}
    found = plan(Changes(), open_alerts=[critical()], kams=kams)
    key = "acme:champion_left:C-7"
    assert found == [
        ("escalation", "email", "kam-marc", (key,), AS_OF),
        ("reminder", "slack", "kam-lea", (key,), AS_OF),
        ("reminder", "email", "kam-lea", (key,), AS_OF),
    ]


def test_unowned_accounts_reach_only_the_team_channel_and_only_when_critical() -> None:
    assert TEAM is not None
    accounts = {"acme": snapshot(owner_kam_id=None, tier="standard")}
    changes = Changes(opened=(opened("risk_level", "critical"), opened("usage_drop", "warning")))
    assert plan(changes, accounts=accounts) == [
        ("immediate", "team_channel", TEAM, ("acme:risk_level", "acme:usage_drop"), AS_OF)
    ]
    no_team = with_policy(team_channel=None)
    assert plan(changes, accounts=accounts, config=no_team) == []


def test_plan_is_deterministic() -> None:
    changes = Changes(
        opened=tuple(
            [opened("risk_level", "critical", account=a) for a in ("a", "b", "c")]
            + [opened("usage_drop", "warning", account=a) for a in ("d", "e")]
        )
    )
    accounts = {a: snapshot(account_id=a, tier="strategic") for a in "abcde"}
    alerts = [open_alert(f"{a}:nps_detractor", alert_id=i) for i, a in enumerate("abcde")]
    first = plan_notifications(changes, alerts, KAMS, accounts, {"kam-lea": 1}, AS_OF, CONFIG)
    rng = random.Random(4)
    for _ in range(5):
        shuffled = Changes(opened=tuple(rng.sample(changes.opened, len(changes.opened))))
        again = plan_notifications(
            shuffled, rng.sample(alerts, len(alerts)), KAMS, accounts, {"kam-lea": 1}, AS_OF, CONFIG
        )
        assert again == first


def test_alerts_after_applies_changes_to_either_state() -> None:
    old = open_alert("acme:usage_drop", alert_id=1)
    gone = open_alert("acme:nps_detractor", alert_id=2)
    d = opened("usage_drop", "critical").alert
    changes = Changes(
        opened=(opened("risk_level", "critical"),),
        severity_changed=(SeverityChanged(1, "acme:usage_drop", "acme", "warning", "critical", d),),
        resolved=(resolved(gone),),
    )
    after = alerts_after(changes, [old, gone])
    assert {k: s.severity for k, s in after.items()} == {"acme:usage_drop": "critical", "acme:risk_level": "critical"}
    assert after["acme:risk_level"].alert_id is None
    assert [c.dedup_key for c in candidates(changes)] == ["acme:risk_level", "acme:usage_drop"]


def test_naive_as_of_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_notifications(Changes(), [], {}, {}, {}, AS_OF.replace(tzinfo=None), CONFIG)


def test_overflowed_critical_comes_first_in_the_digest() -> None:
    changes = Changes(opened=(opened("usage_drop", "warning", account="globex"), opened("risk_level", "critical")))
    accounts = {"acme": snapshot(tier="key"), "globex": snapshot(account_id="globex", tier="key")}
    found = plan(changes, accounts=accounts, sent_today={"kam-lea": 3}, kams={"kam-lea": kam(slack_user_id=None)})
    assert found == [("digest", "email", "kam-lea", ("acme:risk_level", "globex:usage_drop"), PARIS_DIGEST)]


def test_an_owner_unknown_to_kamwatch_counts_as_no_owner() -> None:
    assert TEAM is not None
    accounts = {"acme": snapshot(owner_kam_id="kam-ghost", tier="key")}
    found = plan(Changes(opened=(opened("risk_level", "critical"),)), accounts=accounts, sent_today={"kam-ghost": 9})
    assert found == [("immediate", "team_channel", TEAM, ("acme:risk_level",), AS_OF)]


# --- "cleared" notes wait for a digest with news ----------------------------------------------------------


def note(key: str = "acme:usage_drop", alert_id: int = 7, owed_since: datetime = AS_OF) -> ClearedNote:
    return ClearedNote(alert_id, key, key.split(":")[0], owed_since)


def test_a_warning_resolved_today_owes_a_note_that_waits() -> None:
    alert = open_alert("acme:usage_drop", alert_id=7, last_notified_at=ago(days=1))
    changes = Changes(resolved=(resolved(alert),))
    assert cleared_notes_owed(changes, [alert], KAMS, {"acme": snapshot()}, AS_OF) == [note()]
    # a cleared-only day: nothing is sent, not even a digest of cleared notes alone
    assert plan(changes, open_alerts=[alert]) == []


def test_cleared_notes_ride_with_the_next_digest_that_has_news() -> None:
    # resolved the day before, news today on another account of Léa's: one digest carries both
    accounts = {"acme": snapshot(tier="key"), "globex": snapshot(account_id="globex", tier="key")}
    changes = Changes(opened=(opened("nps_detractor", "warning", account="globex"),))
    found = plan(changes, accounts=accounts, waiting=(note(owed_since=ago(days=1)),))
    assert found == [
        ("resolved", "slack", "kam-lea", ("acme:usage_drop",), PARIS_DIGEST),
        ("resolved", "email", "kam-lea", ("acme:usage_drop",), PARIS_DIGEST),
        ("digest", "slack", "kam-lea", ("globex:nps_detractor",), PARIS_DIGEST),
        ("digest", "email", "kam-lea", ("globex:nps_detractor",), PARIS_DIGEST),
    ]
    # and a note resolved with that news rides too, the cleared alert named by id
    gone = open_alert("acme:ticket_surge", alert_id=8, last_notified_at=ago(days=3))
    full = plan_notifications(
        Changes(opened=changes.opened, resolved=(resolved(gone),)), [gone], KAMS, accounts, {}, AS_OF, CONFIG
    )
    assert full.cleared_notes == (note("acme:ticket_surge", alert_id=8),)
    assert [
        (n.kind, n.channel, n.alert_dedup_keys, n.alert_ids) for n in full.notifications if n.kind == "resolved"
    ] == [
        ("resolved", "slack", ("acme:ticket_surge",), (8,)),
        ("resolved", "email", ("acme:ticket_surge",), (8,)),
    ]


def test_cleared_notes_ride_with_news_planned_by_an_earlier_evaluation() -> None:
    # Léa's 9:00 digest already holds an alert from another evaluation (another shard of the sweep)
    found = plan(Changes(), waiting=(note(owed_since=ago(days=2)),), digest_news=frozenset({"kam-lea"}))
    assert found == [
        ("resolved", "slack", "kam-lea", ("acme:usage_drop",), PARIS_DIGEST),
        ("resolved", "email", "kam-lea", ("acme:usage_drop",), PARIS_DIGEST),
    ]
    # news for another KAM does not help Léa's notes
    assert plan(Changes(), waiting=(note(owed_since=ago(days=2)),), digest_news=frozenset({"kam-marc"})) == []


@pytest.mark.parametrize(
    ("owed_since", "sent"),
    [
        # resolved at 12:00 UTC 14 November: the 21 November 9:00 Paris digest (8:00 UTC) is the last one within
        # 7 days, the next one (22 November) would be late: it goes now, alone if need be
        (utc(2026, 11, 14, 12, 0), True),
        # resolved at 7:00 UTC on 14 November: the 21 November digest comes 7 days and an hour later, too late
        # already; never held back further
        (utc(2026, 11, 14, 7, 0), True),
        # resolved at 9:00 UTC on 15 November: the 22 November digest is still within 7 days: wait
        (utc(2026, 11, 15, 9, 0), False),
        (ago(days=1), False),
    ],
)
def test_cleared_notes_go_out_within_seven_days_even_without_news(owed_since: datetime, sent: bool) -> None:
    found = plan(Changes(), waiting=(note(owed_since=owed_since), note("acme:nps_detractor", 9, ago(days=1))))
    if sent:
        # the oldest note is due: every waiting note of the KAM goes in that digest
        assert found == [
            ("resolved", "slack", "kam-lea", ("acme:nps_detractor", "acme:usage_drop"), PARIS_DIGEST),
            ("resolved", "email", "kam-lea", ("acme:nps_detractor", "acme:usage_drop"), PARIS_DIGEST),
        ]
    else:
        assert found == []


def test_cleared_note_wait_is_configurable() -> None:
    waiting = (note(owed_since=ago(days=2)),)
    assert plan(Changes(), waiting=waiting) == []
    assert [k for k, *_ in plan(Changes(), waiting=waiting, config=with_policy(cleared_note_max_days=2))] == [
        "resolved",
        "resolved",
    ]


def test_cleared_notes_follow_the_kams_own_digest_hour_and_channels() -> None:
    new_york = {"kam-lea": kam("kam-lea", timezone="America/New_York", slack_user_id=None, locale="en")}
    changes = Changes(opened=(opened("usage_drop", "warning", account="globex"),))
    accounts = {"acme": snapshot(tier="key"), "globex": snapshot(account_id="globex", tier="key")}
    found = plan(changes, accounts=accounts, kams=new_york, waiting=(note("acme:nps_detractor", 9, ago(days=3)),))
    assert found == [
        ("resolved", "email", "kam-lea", ("acme:nps_detractor",), utc(2026, 11, 20, 14, 0)),
        ("digest", "email", "kam-lea", ("globex:usage_drop",), utc(2026, 11, 20, 14, 0)),
    ]


def test_cleared_notes_of_an_account_without_a_known_owner_wait() -> None:
    accounts = {"acme": snapshot(owner_kam_id=None)}
    assert plan(Changes(), accounts=accounts, waiting=(note(owed_since=ago(days=30)),)) == []


def test_an_evaluation_that_changes_nothing_has_waiting_notes_to_send_only_near_their_deadline() -> None:
    assert not cleared_notes_may_go([], AS_OF, CONFIG)
    assert not cleared_notes_may_go([note(owed_since=ago(days=3, hours=23))], AS_OF, CONFIG)
    assert cleared_notes_may_go([note(owed_since=ago(days=4))], AS_OF, CONFIG)
    # whenever the plan would send a note, this says so (checked over a fortnight of evaluations, hourly)
    for hours in range(0, 14 * 24):
        waiting = (note(owed_since=ago(hours=hours)),)
        if plan(Changes(), waiting=waiting):
            assert cleared_notes_may_go(waiting, AS_OF, CONFIG)
