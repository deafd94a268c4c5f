"""Pure notification policy, as small stages: snooze -> dedup -> inhibit -> group -> budget -> route.

``plan_notifications`` chains them; each stage is a plain function of its inputs and ``as_of`` (no clock), so each
can be tested on its own. The outbox and the senders around it are someone else's job.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from alerts.config import AlertsConfig
from alerts.model import AccountSnapshot, AlertState, Kam, OpenAlert
from alerts.reconcile import Changes
from schemas.vocabulary import SEVERITY_RANK, Severity

NotificationKind = Literal["immediate", "digest", "folded", "escalation", "reminder", "resolved"]
Channel = Literal["slack", "email", "team_channel"]
Delivery = Literal["immediate", "digest", "folded"]

_KIND_ORDER: dict[NotificationKind, int] = {
    "escalation": 0,
    "reminder": 1,
    "immediate": 2,
    "resolved": 3,
    "folded": 4,
    "digest": 5,
}
_CHANNEL_ORDER: dict[Channel, int] = {"slack": 0, "email": 1, "team_channel": 2}


@dataclass(frozen=True, slots=True)
class PlannedNotification:
    """One message to write to the outbox, except ``folded`` which only records where alerts went.

    ``recipient`` is a KAM id, or the channel name for ``team_channel``. ``alert_dedup_keys`` lists the alerts
    the message is about, main ones first; for ``immediate`` and ``digest`` it includes the alerts folded into
    them. ``account_id`` is None for digests, which span accounts. ``alert_ids`` names the resolved alerts of a
    ``resolved`` note (a dedup key may recur among resolved alerts; empty for the other kinds).
    """

    kind: NotificationKind
    channel: Channel
    recipient: str
    alert_dedup_keys: tuple[str, ...]
    send_at: datetime
    account_id: str | None
    folded_into: str | None = None
    alert_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Candidate:
    """An alert that may deserve a notification now: just opened, or just raised to critical."""

    dedup_key: str
    account_id: str
    severity: Severity
    fired_at: datetime


@dataclass(frozen=True, slots=True)
class AlertStatus:
    """An alert as it stands once the changes are applied (``alert_id`` None: opened by these changes)."""

    alert_id: int | None
    dedup_key: str
    account_id: str
    severity: Severity
    state: AlertState
    fired_at: datetime
    snoozed_until: datetime | None
    last_notified_at: datetime | None
    clearing_since: datetime | None = None
    """Its condition clear since then, held open before resolving (None: the condition holds)."""


@dataclass(frozen=True, slots=True)
class UrgentGroup:
    """Critical alerts of one account for one recipient, sent as one message, with the alerts folded into them."""

    account_id: str
    kam_id: str | None
    keys: tuple[str, ...]
    folded: tuple[str, ...]
    first_fired_at: datetime


@dataclass(frozen=True, slots=True)
class ClearedNote:
    """A resolved alert whose KAM is owed a "cleared" note: they heard of the alert and did not snooze it.

    ``owed_since`` is when it resolved. An ``urgent`` one (a critical alert) is told at once; the others go in a
    digest: ``digest_at`` when the digest that was to announce the alert has not gone out yet (the note goes with
    it, so that digest does not list the alert as live), else the KAM's next digest that has news, or the last
    digest within ``cleared_note_max_days`` of ``owed_since``, whichever comes first.
    """

    alert_id: int
    dedup_key: str
    account_id: str
    owed_since: datetime
    urgent: bool = False
    digest_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NotificationPlan:
    """What an evaluation owes: the notifications (sorted, deterministic) and the "cleared" notes its changes
    made owed (to be recorded with their alerts, sent now or later, see ``plan_cleared_notes``)."""

    notifications: tuple[PlannedNotification, ...] = ()
    cleared_notes: tuple[ClearedNote, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.notifications or self.cleared_notes)


@dataclass(frozen=True, slots=True)
class Escalation:
    alert_id: int
    dedup_key: str
    account_id: str
    kam_id: str
    manager_kam_id: str
    due_at: datetime


# --- time ----------------------------------------------------------------------------------------------------


def next_digest_time(kam_timezone: str, hour: int, as_of: datetime) -> datetime:
    """The first ``hour``:00 local time strictly after ``as_of``, in UTC.

    Local wall-clock arithmetic, so the digest stays at 9:00 local across DST changes; an hour skipped by a
    spring-forward change resolves to the instant just after the gap (zoneinfo's fold=0 offset).
    """
    zone = ZoneInfo(kam_timezone)
    local_day = as_of.astimezone(zone).date()
    for offset in range(3):
        candidate = datetime.combine(local_day + timedelta(days=offset), time(hour), tzinfo=zone)
        if candidate > as_of:
            return candidate.astimezone(UTC)
    raise AssertionError("unreachable: a local hour always comes back within two days")


def local_day_bounds(kam_timezone: str, as_of: datetime) -> tuple[datetime, datetime]:
    """Start (inclusive) and end (exclusive), in UTC, of the KAM's local day containing ``as_of`` (23 or 25 h
    long on DST changes): the window in which to count notifications already sent today for the budget."""
    zone = ZoneInfo(kam_timezone)
    day = as_of.astimezone(zone).date()
    start = datetime.combine(day, time(), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


# --- stages --------------------------------------------------------------------------------------------------


def alerts_after(changes: Changes, open_alerts: Iterable[OpenAlert]) -> dict[str, AlertStatus]:
    """Open alerts by dedup key once ``changes`` are applied (works whether ``open_alerts`` is before or after)."""
    status: dict[str, AlertStatus] = {}
    for a in sorted(open_alerts, key=lambda a: (a.dedup_key, a.fired_at, a.alert_id)):
        if a.dedup_key not in status:
            status[a.dedup_key] = AlertStatus(
                alert_id=a.alert_id,
                dedup_key=a.dedup_key,
                account_id=a.account_id,
                severity=a.severity,
                state=a.state,
                fired_at=a.fired_at,
                snoozed_until=a.snoozed_until,
                last_notified_at=a.last_notified_at,
                clearing_since=a.clearing_since,
            )
    for r in changes.resolved:
        if (s := status.get(r.dedup_key)) is not None and s.alert_id == r.alert_id:
            del status[r.dedup_key]
    for c in changes.severity_changed:
        if (s := status.get(c.dedup_key)) is not None:
            status[c.dedup_key] = replace(s, severity=c.severity)
    for h in changes.clearing:
        if (s := status.get(h.dedup_key)) is not None and s.alert_id == h.alert_id:
            status[h.dedup_key] = replace(s, clearing_since=h.since)
    for b in changes.returned:
        if (s := status.get(b.dedup_key)) is not None and s.alert_id == b.alert_id:
            status[b.dedup_key] = replace(s, clearing_since=None)
    for o in changes.opened:
        if o.alert.dedup_key not in status:
            d = o.alert
            status[d.dedup_key] = AlertStatus(
                None, d.dedup_key, d.account_id, d.severity, "firing", o.fired_at, None, None
            )
    return status


def candidates(changes: Changes) -> list[Candidate]:
    """New alerts, and alerts raised to critical (a raise that stays below critical changes nothing sent)."""
    found = [Candidate(o.alert.dedup_key, o.alert.account_id, o.alert.severity, o.fired_at) for o in changes.opened]
    found += [
        Candidate(c.dedup_key, c.account_id, c.severity, c.alert.condition_since)
        for c in changes.severity_changed
        if c.raised and c.severity == "critical"
    ]
    return found


def drop_snoozed(
    found: Iterable[Candidate], status: Mapping[str, AlertStatus], as_of: datetime
) -> tuple[list[Candidate], list[Candidate]]:
    """(kept, snoozed): an alert snoozed until after ``as_of`` is not notified. Runs before dedup on purpose, so a
    snoozed duplicate cannot stand in for a live one."""
    kept: list[Candidate] = []
    snoozed: list[Candidate] = []
    for c in found:
        s = status.get(c.dedup_key)
        until = s.snoozed_until if s is not None else None
        (snoozed if until is not None and until > as_of else kept).append(c)
    return kept, snoozed


def dedup(found: Iterable[Candidate]) -> list[Candidate]:
    """One candidate per dedup key, the most severe (then earliest) one, in a stable order."""
    best: dict[str, Candidate] = {}
    for c in found:
        other = best.get(c.dedup_key)
        if other is None or (-SEVERITY_RANK[c.severity], c.fired_at) < (-SEVERITY_RANK[other.severity], other.fired_at):
            best[c.dedup_key] = c
    return sorted(best.values(), key=lambda c: (c.account_id, c.fired_at, c.dedup_key))


def inhibit(found: Iterable[Candidate], status: Mapping[str, AlertStatus]) -> tuple[list[Candidate], dict[str, str]]:
    """(kept, folded key -> critical key): while an account has a firing critical alert, its lower-severity
    alerts are folded into it (the oldest such critical alert) instead of being sent on their own. A critical
    alert held open while its condition is clear folds nothing: it is on its way out, and what is folded into
    it is never told on its own."""
    sources: dict[str, AlertStatus] = {}
    for s in sorted(status.values(), key=lambda s: (s.fired_at, s.dedup_key)):
        if s.severity == "critical" and s.state == "firing" and s.clearing_since is None:
            sources.setdefault(s.account_id, s)
    kept, folded = [], {}
    for c in found:
        source = sources.get(c.account_id)
        if source is not None and c.severity != "critical":
            folded[c.dedup_key] = source.dedup_key
        else:
            kept.append(c)
    return kept, folded


def split_urgent(found: Iterable[Candidate]) -> tuple[list[Candidate], list[Candidate]]:
    """(urgent, for the digest): critical alerts go out at once, warning and info ones wait for the digest."""
    urgent: list[Candidate] = []
    later: list[Candidate] = []
    for c in found:
        (urgent if c.severity == "critical" else later).append(c)
    return urgent, later


def group_urgent(
    urgent: Iterable[Candidate], folded: Mapping[str, str], owners: Mapping[str, str | None]
) -> list[UrgentGroup]:
    """One message per account (its critical alerts, then what is folded into them), oldest first."""
    by_account: dict[str, list[Candidate]] = {}
    for c in urgent:
        by_account.setdefault(c.account_id, []).append(c)
    groups = []
    for account_id, items in by_account.items():
        items.sort(key=lambda c: (c.fired_at, c.dedup_key))
        keys = tuple(c.dedup_key for c in items)
        inner = tuple(sorted(k for k, parent in folded.items() if parent in keys))
        groups.append(UrgentGroup(account_id, owners.get(account_id), keys, inner, items[0].fired_at))
    return sorted(groups, key=lambda g: (g.first_fired_at, g.account_id))


def apply_budget(
    groups: Iterable[UrgentGroup], sent_today: Mapping[str, int], budget: int
) -> tuple[list[UrgentGroup], list[UrgentGroup]]:
    """(sent now, overflow to the digest): each KAM gets at most ``budget`` immediate messages per local day,
    counting ``sent_today``; groups are taken oldest first. Groups without a KAM are not budgeted."""
    used = dict(sent_today)
    now, overflow = [], []
    for g in groups:
        if g.kam_id is None:
            now.append(g)
            continue
        if used.get(g.kam_id, 0) < budget:
            used[g.kam_id] = used.get(g.kam_id, 0) + 1
            now.append(g)
        else:
            overflow.append(g)
    return now, overflow


def channels_for(kam: Kam) -> tuple[Channel, ...]:
    """Slack DM when the KAM has a Slack id; email always."""
    return ("slack", "email") if kam.slack_user_id else ("email",)


def may_escalate(a: OpenAlert, as_of: datetime) -> bool:
    """Whether an open alert is one the escalation waits on: critical, still firing (not acknowledged, not
    snoozed), told to its KAM, not escalated yet, its condition not clearing. Whether it is due also depends on
    the delay and on the KAM having a manager (``due_escalations``)."""
    return (
        a.severity == "critical"
        and a.state == "firing"
        and a.escalated_at is None
        and a.clearing_since is None
        and a.last_notified_at is not None
        and (a.snoozed_until is None or a.snoozed_until <= as_of)
    )


def worth_planning(
    changes: Changes,
    open_alerts: Iterable[OpenAlert],
    waiting: Iterable[ClearedNote],
    as_of: datetime,
    config: AlertsConfig,
) -> bool:
    """Whether an evaluation has anything to plan: changes, a waiting "cleared" note whose time may be up, or
    an alert the escalation waits on (news would have taken the waiting notes when it was planned)."""
    return (
        bool(changes)
        or cleared_notes_may_go(waiting, as_of, config)
        or any(may_escalate(a, as_of) for a in open_alerts)
    )


def due_escalations(
    open_alerts: Iterable[OpenAlert],
    kams: Mapping[str, Kam],
    as_of: datetime,
    config: AlertsConfig,
    *,
    owners: Mapping[str, str | None],
) -> tuple[Escalation, ...]:
    """Critical alerts still firing (not acknowledged, not snoozed) ``escalation_delay_hours`` after the KAM was
    notified, or after a snooze ended, whichever is later; never twice; only when the owner KAM (``owners``:
    account id -> KAM id) has a known manager. Never-notified alerts wait: the KAM cannot be late on news not
    yet delivered. Nor is an alert held open while its condition is clear escalated: a manager is not called in
    for a condition that has gone; should it come back within the hold, the alert is due again as before."""
    delay = timedelta(hours=config.policy.escalation_delay_hours)
    due = []
    for a in open_alerts:
        if not may_escalate(a, as_of) or a.last_notified_at is None:
            continue
        kam_id = owners.get(a.account_id)
        kam = kams.get(kam_id) if kam_id is not None else None
        if kam is None or kam.manager_kam_id is None or kam.manager_kam_id not in kams:
            continue
        start = max(a.fired_at, a.last_notified_at, a.snoozed_until or a.last_notified_at)
        if as_of >= start + delay:
            due.append(Escalation(a.alert_id, a.dedup_key, a.account_id, kam.kam_id, kam.manager_kam_id, start + delay))
    return tuple(sorted(due, key=lambda e: (e.due_at, e.dedup_key)))


# --- the whole plan ------------------------------------------------------------------------------------------


def plan_notifications(
    changes: Changes,
    open_alerts: Sequence[OpenAlert],
    kams: Mapping[str, Kam],
    accounts: Mapping[str, AccountSnapshot],
    sent_today: Mapping[str, int],
    as_of: datetime,
    config: AlertsConfig,
    *,
    waiting: Sequence[ClearedNote] = (),
    digest_news: Collection[str] = frozenset(),
) -> NotificationPlan:
    """Every notification the changes and the clock (``as_of``) call for, deterministic and sorted, and the
    "cleared" notes the changes made owed.

    ``open_alerts`` are the alerts open before (or after) ``changes`` were applied; ``accounts`` maps account ids
    to snapshots (owner KAM, tier); ``sent_today`` counts immediate messages already sent to each KAM in their
    local day (see ``local_day_bounds``). Alerts of an account without a known owner KAM reach only the team
    channel, and only when critical. Several digest notifications for the same KAM and ``send_at`` (from
    several calls) are meant to be merged into one message by the sender.

    ``waiting`` are "cleared" notes owed from earlier evaluations and not sent yet (their accounts must be in
    ``accounts``), ``digest_news`` the KAMs whose next digest already goes out with alerts planned earlier: the
    notes ride with such a digest, or with one planned here (see ``plan_cleared_notes``).
    """
    if as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    policy = config.policy
    # An owner we know nothing about is as good as none: nowhere to send, nothing to budget.
    owners = {a: s.owner_kam_id if s.owner_kam_id in kams else None for a, s in accounts.items()}
    status = alerts_after(changes, open_alerts)

    live, _snoozed = drop_snoozed(candidates(changes), status, as_of)
    kept, folded = inhibit(dedup(live), status)
    urgent, later = split_urgent(kept)
    now, overflow = apply_budget(group_urgent(urgent, folded, owners), sent_today, policy.immediate_budget_per_day)

    plan: list[PlannedNotification] = []
    for g in now:
        plan += _immediate(g, kams, accounts, as_of, config)
    for g in overflow:
        plan += _team_channel(g, accounts, as_of, config)
    plan += _folded(folded, status, kams, owners, as_of)
    plan += _digests(later, overflow, kams, owners, as_of, config)
    owed = cleared_notes_owed(changes, open_alerts, kams, accounts, as_of)
    plan += plan_cleared_notes([*owed, *waiting], plan, digest_news, kams, accounts, as_of, config)
    # Only alerts still open can be overdue: not one these changes resolve or lower, nor one they raise to
    # critical (its clock starts with the notification of the raise, not with an older one).
    raised = {c.dedup_key for c in changes.severity_changed if c.raised}
    still_open = [
        replace(a, severity=s.severity, clearing_since=s.clearing_since)
        for a in open_alerts
        if (s := status.get(a.dedup_key)) is not None and s.alert_id == a.alert_id and a.dedup_key not in raised
    ]
    plan += _escalations(due_escalations(still_open, kams, as_of, config, owners=owners), kams, as_of)
    ordered = sorted(
        plan,
        key=lambda n: (n.send_at, _KIND_ORDER[n.kind], _CHANNEL_ORDER[n.channel], n.recipient, n.alert_dedup_keys),
    )
    return NotificationPlan(tuple(ordered), tuple(owed))


def deliveries(plan: Iterable[PlannedNotification]) -> dict[str, Delivery]:
    """How each alert of a plan reaches its KAM (for the alert's ``delivery``): folded beats immediate beats digest."""
    rank: dict[Delivery, int] = {"folded": 0, "immediate": 1, "digest": 2}
    as_delivery: dict[NotificationKind, Delivery] = {"folded": "folded", "immediate": "immediate", "digest": "digest"}
    found: dict[str, Delivery] = {}
    for n in plan:
        kind = as_delivery.get(n.kind)
        if kind is None or n.channel == "team_channel":
            continue
        for key in n.alert_dedup_keys:
            if key not in found or rank[kind] < rank[found[key]]:
                found[key] = kind
    return found


def _immediate(
    g: UrgentGroup,
    kams: Mapping[str, Kam],
    accounts: Mapping[str, AccountSnapshot],
    as_of: datetime,
    config: AlertsConfig,
) -> list[PlannedNotification]:
    keys = g.keys + g.folded
    kam = kams.get(g.kam_id) if g.kam_id is not None else None
    found = (
        []
        if kam is None
        else [_note("immediate", ch, kam.kam_id, keys, as_of, g.account_id) for ch in channels_for(kam)]
    )
    return found + _team_channel(g, accounts, as_of, config, unowned=kam is None)


def _team_channel(
    g: UrgentGroup,
    accounts: Mapping[str, AccountSnapshot],
    as_of: datetime,
    config: AlertsConfig,
    unowned: bool = False,
) -> list[PlannedNotification]:
    """Strategic accounts' critical alerts also go to the team channel, whatever the KAM's budget; so do critical
    alerts nobody owns, for any tier."""
    channel = config.policy.team_channel
    snap = accounts.get(g.account_id)
    if channel is None or not (unowned or (snap is not None and snap.tier == "strategic")):
        return []
    return [_note("immediate", "team_channel", channel, g.keys + g.folded, as_of, g.account_id)]


def _folded(
    folded: Mapping[str, str],
    status: Mapping[str, AlertStatus],
    kams: Mapping[str, Kam],
    owners: Mapping[str, str | None],
    as_of: datetime,
) -> list[PlannedNotification]:
    found = []
    for key, parent in sorted(folded.items()):
        account_id = status[parent].account_id
        kam_id = owners.get(account_id)
        kam = kams.get(kam_id) if kam_id is not None else None
        if kam is not None:
            channel = channels_for(kam)[0]
            found.append(_note("folded", channel, kam.kam_id, (key,), as_of, account_id, folded_into=parent))
    return found


def _digests(
    later: Iterable[Candidate],
    overflow: Iterable[UrgentGroup],
    kams: Mapping[str, Kam],
    owners: Mapping[str, str | None],
    as_of: datetime,
    config: AlertsConfig,
) -> list[PlannedNotification]:
    per_kam: dict[str, list[str]] = {}
    for g in overflow:
        if g.kam_id is not None and g.kam_id in kams:
            # Critical alerts over the budget still come first in the digest.
            per_kam.setdefault(g.kam_id, []).extend([*g.keys, *g.folded])
    for c in sorted(later, key=lambda c: (c.fired_at, c.dedup_key)):
        if (kam_id := owners.get(c.account_id)) is not None and kam_id in kams:
            per_kam.setdefault(kam_id, []).append(c.dedup_key)
    found = []
    for kam_id, keys in sorted(per_kam.items()):
        kam = kams[kam_id]
        send_at = next_digest_time(kam.timezone, config.policy.digest_hour, as_of)
        found += [_note("digest", ch, kam_id, tuple(keys), send_at, None) for ch in channels_for(kam)]
    return found


def cleared_notes_owed(
    changes: Changes,
    open_alerts: Iterable[OpenAlert],
    kams: Mapping[str, Kam],
    accounts: Mapping[str, AccountSnapshot],
    as_of: datetime,
) -> list[ClearedNote]:
    """The "cleared" notes the alerts these changes resolve owe their KAM: only for an alert the KAM heard of
    (or is about to, in a digest not sent yet) and did not snooze, on an account with an owner kamwatch knows.
    A note is owed from when the alert resolves (after a hold, the end of the hold, which may be before ``as_of``).
    A critical alert already told is cleared at once (urgent); an alert still waiting for its digest is cleared
    in that digest; any other note waits for a digest (see ``plan_cleared_notes``)."""
    by_id = {a.alert_id: a for a in open_alerts}
    found = []
    for r in changes.resolved:
        a = by_id.get(r.alert_id)
        if a is None or a.last_notified_at is None or (a.snoozed_until is not None and a.snoozed_until > as_of):
            continue
        snap = accounts.get(r.account_id)
        if snap is None or snap.owner_kam_id is None or snap.owner_kam_id not in kams:
            continue
        unsent = a.last_notified_at if a.last_notified_at > as_of else None
        urgent = a.severity == "critical" and unsent is None
        found.append(ClearedNote(r.alert_id, r.dedup_key, r.account_id, r.resolved_at, urgent, unsent))
    return sorted(found, key=lambda n: (n.account_id, n.dedup_key, n.alert_id))


def cleared_notes_may_go(waiting: Iterable[ClearedNote], as_of: datetime, config: AlertsConfig) -> bool:
    """Whether a waiting note could reach its last digest around ``as_of`` (the next digest, then the one after,
    come within about two days): if not, and nothing else changed, an evaluation has nothing to send."""
    horizon = as_of + timedelta(days=3) - timedelta(days=config.policy.cleared_note_max_days)
    return any(n.owed_since <= horizon for n in waiting)


def plan_cleared_notes(
    notes: Iterable[ClearedNote],
    plan: Iterable[PlannedNotification],
    digest_news: Collection[str],
    kams: Mapping[str, Kam],
    accounts: Mapping[str, AccountSnapshot],
    as_of: datetime,
    config: AlertsConfig,
) -> list[PlannedNotification]:
    """The "cleared" notes to send, of those owed (``notes``: just resolved, or still waiting); the others wait.

    Urgent ones go at once (and to the team channel for a strategic account), one message per account; one whose
    digest has not gone out goes with that digest. The others never make a digest of their own: they ride with
    the KAM's next digest when it goes out anyway (with alerts in ``plan``, with an alert not yet sent in it, or
    the KAM is in ``digest_news``: already holding news from an earlier evaluation), and otherwise wait, at most
    ``cleared_note_max_days``: when the digest after the next one would come later than that after the oldest
    waiting note, every waiting note of the KAM goes in the next one. Notes of an account without a known owner
    wait (there is nowhere to send them).
    """
    policy = config.policy
    max_wait = timedelta(days=policy.cleared_note_max_days)
    owners = {a: s.owner_kam_id for a, s in accounts.items() if s.owner_kam_id in kams}
    going: set[tuple[str, datetime]] = {
        (n.recipient, n.send_at) for n in plan if n.kind == "digest" and n.channel != "team_channel"
    }
    groups: dict[tuple[str, str, datetime, bool], list[ClearedNote]] = {}
    waiting: dict[str, list[ClearedNote]] = {}
    for note in sorted(notes, key=lambda n: (n.owed_since, n.alert_id)):
        kam_id = owners.get(note.account_id)
        if kam_id is None:
            continue
        if note.urgent:
            groups.setdefault((kam_id, note.account_id, as_of, True), []).append(note)
        elif note.digest_at is not None:
            groups.setdefault((kam_id, note.account_id, note.digest_at, False), []).append(note)
            going.add((kam_id, note.digest_at))
        else:
            waiting.setdefault(kam_id, []).append(note)
    for kam_id, owed in waiting.items():
        kam = kams[kam_id]
        at = next_digest_time(kam.timezone, policy.digest_hour, as_of)
        last_chance = next_digest_time(kam.timezone, policy.digest_hour, at) > owed[0].owed_since + max_wait
        if kam_id in digest_news or (kam_id, at) in going or last_chance:
            for note in owed:
                groups.setdefault((kam_id, note.account_id, at, False), []).append(note)
    found = []
    team = policy.team_channel
    for (kam_id, account_id, send_at, urgent), group in sorted(groups.items()):
        group.sort(key=lambda n: (n.dedup_key, n.alert_id))
        keys = tuple(n.dedup_key for n in group)
        ids = tuple(n.alert_id for n in group)
        found += [
            _note("resolved", ch, kam_id, keys, send_at, account_id, alert_ids=ids) for ch in channels_for(kams[kam_id])
        ]
        if urgent and team is not None and accounts[account_id].tier == "strategic":
            found.append(_note("resolved", "team_channel", team, keys, send_at, account_id, alert_ids=ids))
    return found


def _escalations(due: Iterable[Escalation], kams: Mapping[str, Kam], as_of: datetime) -> list[PlannedNotification]:
    found = []
    for e in due:
        manager, kam = kams[e.manager_kam_id], kams[e.kam_id]
        keys = (e.dedup_key,)
        found += [_note("escalation", ch, manager.kam_id, keys, as_of, e.account_id) for ch in channels_for(manager)]
        found += [_note("reminder", ch, kam.kam_id, keys, as_of, e.account_id) for ch in channels_for(kam)]
    return found


def _note(
    kind: NotificationKind,
    channel: Channel,
    recipient: str,
    keys: tuple[str, ...],
    send_at: datetime,
    account_id: str | None,
    folded_into: str | None = None,
    alert_ids: tuple[int, ...] = (),
) -> PlannedNotification:
    return PlannedNotification(kind, channel, recipient, keys, send_at, account_id, folded_into, alert_ids)
