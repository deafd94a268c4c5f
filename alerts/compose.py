"""What a notification plan becomes, as pure functions: the outbox rows (their payloads composed from the
alerts' state now), each alert's delivery, and the escalations to stamp.

The ``Book`` knows every alert of the evaluation by dedup key and id once its changes are applied (live and
just resolved), and how each shows in a message (``AlertItem``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from alerts.messages import AlertItem, AlertMessage, DigestSection
from alerts.model import AccountSnapshot, DeliveryUpdate, Kam, OpenAlert, OutboxRow
from alerts.outbox import digest_payload, message_payload
from alerts.policy import ClearedNote, NotificationPlan, PlannedNotification, deliveries
from alerts.reconcile import Changes
from schemas.vocabulary import Locale


@dataclass
class Book:
    """Alert ids and display items by dedup key, once the changes are applied."""

    live: dict[str, int]
    gone: dict[str, int]
    items: dict[int, AlertItem]
    open_alerts: Sequence[OpenAlert]
    changes: Changes
    account_of: dict[int, str] = field(default_factory=dict)

    @classmethod
    def after(
        cls,
        changes: Changes,
        open_alerts: Sequence[OpenAlert],
        items: Mapping[int, AlertItem],
        new_ids: Mapping[str, int],
        waiting: Sequence[ClearedNote] = (),
        waiting_items: Mapping[int, AlertItem] | None = None,
    ) -> Book:
        """The book of an evaluation: the open alerts and their ``items`` as loaded, the alerts ``changes``
        opened (``new_ids``: their ids by dedup key) or changed, and the waiting cleared notes' alerts."""
        shown = dict(items)
        for o in changes.opened:
            a = o.alert
            alert_id = new_ids[a.dedup_key]
            shown[alert_id] = AlertItem(
                alert_id, a.dedup_key, a.rule, a.severity, a.title_en, a.title_fr, o.fired_at, a.subject, a.drivers
            )
        for c in changes.severity_changed:
            old = shown[c.alert_id]
            shown[c.alert_id] = replace(
                old, severity=c.severity, title_en=c.alert.title_en, title_fr=c.alert.title_fr, drivers=c.alert.drivers
            )
        for r in changes.resolved:
            if r.alert_id in shown:
                shown[r.alert_id] = replace(shown[r.alert_id], state="resolved")
        book = cls(
            live={a.dedup_key: a.alert_id for a in open_alerts} | dict(new_ids),
            gone={r.dedup_key: r.alert_id for r in changes.resolved},
            items=shown | dict(waiting_items or {}),
            open_alerts=open_alerts,
            changes=changes,
        )
        for r in changes.resolved:
            book.live.pop(r.dedup_key, None)
        book.account_of = {a.alert_id: a.account_id for a in open_alerts}
        book.account_of |= {new_ids[o.alert.dedup_key]: o.alert.account_id for o in changes.opened}
        book.account_of |= {n.alert_id: n.account_id for n in waiting}
        return book

    def id_of(self, key: str, *, resolved: bool = False) -> int:
        if resolved and key in self.gone:
            return self.gone[key]
        return self.live[key] if key in self.live else self.gone[key]

    def since_last(self, account_id: str, shown: set[int]) -> tuple[tuple[AlertItem, ...], tuple[AlertItem, ...]]:
        """What changed on the account since the last message its KAM got about it: alerts opened since
        (not already in this message), alerts resolved now. Nothing for a first message."""
        previous = max(
            (a.last_notified_at for a in self.open_alerts if a.account_id == account_id and a.last_notified_at),
            default=None,
        )
        if previous is None:
            return (), ()
        new = tuple(
            sorted(
                (
                    i
                    for i_id in self.live.values()
                    if (i := self.items.get(i_id)) is not None
                    and self.account_of.get(i_id) == account_id
                    and i_id not in shown
                    and i.fired_at > previous
                ),
                key=lambda i: (i.fired_at, i.alert_id),
            )
        )
        cleared = tuple(self.items[r.alert_id] for r in self.changes.resolved if r.account_id == account_id)
        return new, cleared


@dataclass(frozen=True, slots=True)
class TeamChannel:
    """How the team channel reads its messages (its own setting, not any KAM's)."""

    locale: Locale = "en"
    timezone: str = "UTC"


def outbox_rows(
    plan: NotificationPlan,
    book: Book,
    snapshots: Mapping[str, AccountSnapshot],
    kams: Mapping[str, Kam],
    as_of: datetime,
    team: TeamChannel = TeamChannel(),
) -> list[OutboxRow]:
    """One outbox row per planned message (``folded`` ones only record a delivery), its payload composed now."""
    return [
        row
        for n in plan.notifications
        if n.kind != "folded" and (row := _outbox_row(n, book, snapshots, kams, as_of, team)) is not None
    ]


def delivery_updates(plan: NotificationPlan, book: Book) -> list[DeliveryUpdate]:
    """Each planned alert's delivery; immediate and digest ones are stamped with their send time (the budget
    counts those, the escalation delay starts there); a folded one points at the alert it is folded into."""
    notified: dict[str, datetime] = {}
    parent: dict[str, str] = {}
    for n in plan.notifications:
        if n.kind in ("immediate", "digest") and n.channel != "team_channel":
            for key in n.alert_dedup_keys:
                notified[key] = min(notified.get(key, n.send_at), n.send_at)
        if n.kind == "folded" and n.folded_into is not None:
            parent[n.alert_dedup_keys[0]] = n.folded_into
    updates = []
    for key, delivery in sorted(deliveries(plan.notifications).items()):
        if key not in book.live:
            continue
        folded_into = book.live.get(parent[key]) if delivery == "folded" and key in parent else None
        at = notified.get(key) if delivery != "folded" else None
        updates.append(DeliveryUpdate(book.live[key], delivery, at, folded_into))
    return updates


def escalated(plan: NotificationPlan, book: Book) -> dict[int, str]:
    """The alerts the plan escalates, and to whom (the manager)."""
    return {book.live[n.alert_dedup_keys[0]]: n.recipient for n in plan.notifications if n.kind == "escalation"}


def cleared_note_times(plan: NotificationPlan) -> dict[int, datetime]:
    """When each planned "cleared" note goes to its KAM (the team channel's copy does not count)."""
    return {
        i: n.send_at
        for n in plan.notifications
        if n.kind == "resolved" and n.channel != "team_channel"
        for i in n.alert_ids
    }


def _outbox_row(
    n: PlannedNotification,
    book: Book,
    snapshots: Mapping[str, AccountSnapshot],
    kams: Mapping[str, Kam],
    as_of: datetime,
    team: TeamChannel,
) -> OutboxRow | None:
    resolved = n.kind == "resolved"
    alert_ids = n.alert_ids or tuple(book.id_of(k, resolved=resolved) for k in n.alert_dedup_keys)
    to, kam_id, timezone = n.recipient, None, team.timezone
    locale: Locale = team.locale
    if n.channel != "team_channel":
        kam = kams[n.recipient]
        to = kam.email if n.channel == "email" else (kam.slack_user_id or "")
        kam_id, locale, timezone = kam.kam_id, kam.locale, kam.timezone
    items = [book.items[i] for i in alert_ids if i in book.items]
    if not items:
        return None
    payload: dict[str, Any]
    if n.kind == "digest" or (resolved and n.send_at > as_of):
        payload = _digest(n, items, book, snapshots, to, locale, timezone, resolved=resolved)
    else:
        if n.account_id is None or n.account_id not in snapshots:
            return None
        message = _message(n, items, book, snapshots[n.account_id], kams)
        payload = message_payload(message, to=to, locale=locale, timezone=timezone)
    return OutboxRow(n.kind, n.channel, n.recipient, kam_id, alert_ids, payload, n.send_at)


def _digest(
    n: PlannedNotification,
    items: Sequence[AlertItem],
    book: Book,
    snapshots: Mapping[str, AccountSnapshot],
    to: str,
    locale: Locale,
    timezone: str,
    *,
    resolved: bool,
) -> dict[str, Any]:
    by_account: dict[str, list[AlertItem]] = defaultdict(list)
    for item in items:
        by_account[book.account_of[item.alert_id]].append(item)
    sections = [
        DigestSection(snapshots[a], () if resolved else tuple(its), tuple(its) if resolved else ())
        for a, its in by_account.items()
        if a in snapshots
    ]
    day = n.send_at.astimezone(ZoneInfo(timezone)).date()
    return digest_payload(day, sections, to=to, locale=locale, timezone=timezone)


def _message(
    n: PlannedNotification,
    items: Sequence[AlertItem],
    book: Book,
    account: AccountSnapshot,
    kams: Mapping[str, Kam],
) -> AlertMessage:
    if n.kind == "resolved":
        return AlertMessage("resolved", account, tuple(items))
    if n.kind in ("escalation", "reminder"):
        owner = kams.get(account.owner_kam_id or "")
        kam_name = owner.name if n.kind == "escalation" and owner is not None else None
        return AlertMessage(n.kind, account, tuple(items), kam_name=kam_name)
    main = tuple(i for i in items if i.severity == "critical") or tuple(items[:1])
    folded = tuple(i for i in items if i not in main)
    new, cleared = book.since_last(account.account_id, {i.alert_id for i in items})
    return AlertMessage("immediate", account, main, folded, new, cleared)
