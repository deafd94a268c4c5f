"""Pure helpers of the notification outbox: the JSON payload of a queued message, digest merging, retry timing.

A payload holds what rendering needs (the account snapshot at alert time, the alert items, the recipient's
address, locale and timezone), not the rendered text: the sender renders at send time, so digest rows queued by
several transactions can be merged into one message. No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, cast

from alerts.messages import (
    AlertItem,
    AlertMessage,
    Audience,
    Digest,
    DigestSection,
    Email,
    Links,
    MessageKind,
    render_digest_email,
    render_digest_slack,
    render_email,
    render_slack,
)
from alerts.model import AccountSnapshot
from alerts.phrasing import Reader, Role
from alerts.playbook import Playbook
from schemas.vocabulary import SEVERITY_RANK, Locale, Severity, driver_from_json, driver_json

PAYLOAD_VERSION = 1
PayloadFormat = Literal["message", "digest"]
SendChannel = Literal["slack", "email", "team_channel"]


class PayloadError(ValueError):
    """A stored payload this version cannot read (sending it again will not help)."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """What a sender delivers: a Slack ``chat.postMessage`` body (without channel) or an email."""

    slack: dict[str, Any] | None = None
    email: Email | None = None


# --- JSON of the model values --------------------------------------------------------------------------------


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _required_dt(value: Any, what: str) -> datetime:
    if value is None:
        raise PayloadError(f"{what} is missing")
    return datetime.fromisoformat(value)


def snapshot_json(s: AccountSnapshot) -> dict[str, Any]:
    return {
        "account_id": s.account_id,
        "name": s.name,
        "tier": s.tier,
        "arr": str(s.arr),
        "currency": s.currency,
        "renewal_date": s.renewal_date.isoformat() if s.renewal_date else None,
        "owner_kam_id": s.owner_kam_id,
        "risk": s.risk,
        "level": s.level,
        "risk_7d_ago": s.risk_7d_ago,
        "level_since": _dt(s.level_since),
        "drivers": [driver_json(d) for d in s.drivers],
        "as_of": s.as_of.isoformat(),
    }


def snapshot_from_json(raw: Mapping[str, Any]) -> AccountSnapshot:
    return AccountSnapshot(
        account_id=raw["account_id"],
        name=raw["name"],
        tier=raw["tier"],
        arr=Decimal(raw["arr"]),
        currency=raw["currency"],
        renewal_date=date.fromisoformat(raw["renewal_date"]) if raw.get("renewal_date") else None,
        owner_kam_id=raw.get("owner_kam_id"),
        risk=float(raw["risk"]),
        level=raw["level"],
        risk_7d_ago=float(raw["risk_7d_ago"]) if raw.get("risk_7d_ago") is not None else None,
        level_since=_parse_dt(raw.get("level_since")),
        drivers=tuple(driver_from_json(d) for d in raw.get("drivers", ())),
        as_of=_required_dt(raw.get("as_of"), "snapshot as_of"),
    )


def item_json(i: AlertItem) -> dict[str, Any]:
    return {
        "alert_id": i.alert_id,
        "dedup_key": i.dedup_key,
        "rule": i.rule,
        "severity": i.severity,
        "title_en": i.title_en,
        "title_fr": i.title_fr,
        "fired_at": i.fired_at.isoformat(),
        "subject": i.subject,
        "drivers": [driver_json(d) for d in i.drivers],
        "state": i.state,
    }


def item_from_json(raw: Mapping[str, Any]) -> AlertItem:
    return AlertItem(
        alert_id=int(raw["alert_id"]),
        dedup_key=raw["dedup_key"],
        rule=raw["rule"],
        severity=raw["severity"],
        title_en=raw["title_en"],
        title_fr=raw["title_fr"],
        fired_at=_required_dt(raw.get("fired_at"), "alert fired_at"),
        subject=raw.get("subject"),
        drivers=tuple(driver_from_json(d) for d in raw.get("drivers") or ()),
        state=str(raw.get("state") or "firing"),
    )


# --- payloads ------------------------------------------------------------------------------------------------


def message_payload(message: AlertMessage, *, to: str, locale: Locale, timezone: str) -> dict[str, Any]:
    """The payload of a message about one account (immediate, escalation, reminder, resolved at once)."""
    return {
        "v": PAYLOAD_VERSION,
        "format": "message",
        "to": to,
        "locale": locale,
        "timezone": timezone,
        "message": {
            "kind": message.kind,
            "account": snapshot_json(message.account),
            "alerts": [item_json(i) for i in message.alerts],
            "folded": [item_json(i) for i in message.folded],
            "new_since_last": [item_json(i) for i in message.new_since_last],
            "resolved_since_last": [item_json(i) for i in message.resolved_since_last],
            "kam_name": message.kam_name,
        },
    }


def digest_payload(
    day: date, sections: Sequence[DigestSection], *, to: str, locale: Locale, timezone: str
) -> dict[str, Any]:
    """The payload of one part of a KAM's daily digest (the sender merges the parts of the same digest)."""
    return {
        "v": PAYLOAD_VERSION,
        "format": "digest",
        "to": to,
        "locale": locale,
        "timezone": timezone,
        "day": day.isoformat(),
        "sections": [
            {
                "account": snapshot_json(s.account),
                "alerts": [item_json(i) for i in s.alerts],
                "resolved": [item_json(i) for i in s.resolved],
            }
            for s in sections
        ],
    }


def payload_format(payload: Mapping[str, Any]) -> PayloadFormat:
    fmt = payload.get("format")
    if payload.get("v") != PAYLOAD_VERSION or fmt not in ("message", "digest"):
        raise PayloadError(f"unknown payload (v={payload.get('v')!r}, format={fmt!r})")
    return cast(PayloadFormat, fmt)


def message_from_payload(payload: Mapping[str, Any]) -> AlertMessage:
    raw = payload["message"]
    kind: MessageKind = raw["kind"]
    return AlertMessage(
        kind=kind,
        account=snapshot_from_json(raw["account"]),
        alerts=tuple(item_from_json(i) for i in raw["alerts"]),
        folded=tuple(item_from_json(i) for i in raw.get("folded", ())),
        new_since_last=tuple(item_from_json(i) for i in raw.get("new_since_last", ())),
        resolved_since_last=tuple(item_from_json(i) for i in raw.get("resolved_since_last", ())),
        kam_name=raw.get("kam_name"),
    )


def merge_digests(payloads: Iterable[Mapping[str, Any]]) -> Digest:
    """One digest from its parts: a section per account (the newest snapshot), alerts and resolved ones united
    by id; an alert resolved before the digest goes out is listed as resolved only. Most severe accounts first,
    then the oldest alert."""
    day: date | None = None
    snapshots: dict[str, AccountSnapshot] = {}
    alerts: dict[str, dict[int, AlertItem]] = {}
    resolved: dict[str, dict[int, AlertItem]] = {}
    for payload in payloads:
        if payload_format(payload) != "digest":
            raise PayloadError("not a digest payload")
        part_day = date.fromisoformat(payload["day"])
        day = part_day if day is None else min(day, part_day)
        for raw in payload["sections"]:
            snap = snapshot_from_json(raw["account"])
            known = snapshots.get(snap.account_id)
            if known is None or snap.as_of >= known.as_of:
                snapshots[snap.account_id] = snap
            for i in map(item_from_json, raw.get("alerts", ())):
                alerts.setdefault(snap.account_id, {})[i.alert_id] = i
            for i in map(item_from_json, raw.get("resolved", ())):
                resolved.setdefault(snap.account_id, {})[i.alert_id] = i
    if day is None:
        raise PayloadError("an empty digest")
    sections = []
    for account_id, snap in snapshots.items():
        gone = resolved.get(account_id, {})
        live = [i for i_id, i in alerts.get(account_id, {}).items() if i_id not in gone]
        live.sort(key=lambda i: (-SEVERITY_RANK[i.severity], i.fired_at, i.alert_id))
        sections.append(DigestSection(snap, tuple(live), tuple(sorted(gone.values(), key=lambda i: i.alert_id))))
    sections.sort(key=_section_order)
    return Digest(day, tuple(sections))


def _section_order(s: DigestSection) -> tuple[int, datetime, str]:
    worst: Severity = max((i.severity for i in s.alerts), key=SEVERITY_RANK.__getitem__, default="info")
    first = min((i.fired_at for i in (*s.alerts, *s.resolved)), default=s.account.as_of)
    return (-SEVERITY_RANK[worst] if s.alerts else 1, first, s.account.account_id)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One outbox message read back (several payloads only for the parts of one digest): a message about one
    account, or a digest, for a reader in ``locale`` and ``timezone``."""

    locale: Locale
    timezone: str
    message: AlertMessage | None = None
    digest: Digest | None = None

    def account_ids(self) -> set[str]:
        if self.message is not None:
            return {self.message.account.account_id}
        return {s.account.account_id for s in self.digest.sections} if self.digest is not None else set()

    def owners(self) -> dict[str, str | None]:
        """Each account's owner KAM, as the message knows it."""
        if self.message is not None:
            return {self.message.account.account_id: self.message.account.owner_kam_id}
        sections = self.digest.sections if self.digest is not None else ()
        return {s.account.account_id: s.account.owner_kam_id for s in sections}

    def alert_ids(self) -> set[int]:
        if self.message is not None:
            m = self.message
            return {i.alert_id for i in (*m.alerts, *m.folded, *m.new_since_last, *m.resolved_since_last)}
        if self.digest is None:
            return set()
        return {i.alert_id for s in self.digest.sections for i in (*s.alerts, *s.resolved)}


def read_payloads(payloads: Sequence[Mapping[str, Any]]) -> Outgoing:
    """The message or digest the payloads of one outbox claim hold."""
    if not payloads:
        raise PayloadError("nothing to render")
    first = payloads[0]
    locale: Locale = "fr" if first.get("locale") == "fr" else "en"
    timezone = str(first.get("timezone") or "UTC")
    if payload_format(first) == "digest":
        return Outgoing(locale, timezone, digest=merge_digests(payloads))
    if len(payloads) != 1:
        raise PayloadError("only digests are merged")
    return Outgoing(locale, timezone, message=message_from_payload(first))


@dataclass(frozen=True, slots=True)
class Standing:
    """What stands when a message goes out: the accounts as scored now, those closed (lost) by now, and the
    alerts as they are now (resolved ones included)."""

    accounts: Mapping[str, AccountSnapshot]
    closed: frozenset[str]
    alerts: Mapping[int, AlertItem]


def as_it_stands(out: Outgoing, standing: Standing) -> Outgoing | None:
    """The message with each account and alert as it stands at send time (not as when the message was queued);
    nothing about an account closed since: None when nothing is left to tell."""

    def now(item: AlertItem) -> AlertItem:
        return standing.alerts.get(item.alert_id, item)

    def account(snap: AccountSnapshot) -> AccountSnapshot:
        return standing.accounts.get(snap.account_id, snap)

    if out.message is not None:
        m = out.message
        if m.account.account_id in standing.closed:
            return None
        message = replace(
            m,
            account=account(m.account),
            alerts=tuple(map(now, m.alerts)),
            folded=tuple(map(now, m.folded)),
            new_since_last=tuple(map(now, m.new_since_last)),
            resolved_since_last=tuple(map(now, m.resolved_since_last)),
        )
        return replace(out, message=message)
    if out.digest is None:
        return None
    sections = []
    for s in out.digest.sections:
        if s.account.account_id in standing.closed:
            continue
        items = [now(i) for i in s.alerts]
        live = tuple(i for i in items if i.state != "resolved")
        gone = {i.alert_id: i for i in (*map(now, s.resolved), *(i for i in items if i.state == "resolved"))}
        if not live and not gone:
            continue
        sections.append(DigestSection(account(s.account), live, tuple(sorted(gone.values(), key=lambda i: i.alert_id))))
    if not sections:
        return None
    return replace(out, digest=Digest(out.digest.day, tuple(sorted(sections, key=_section_order))))


def role_of(out: Outgoing, channel: SendChannel) -> Role:
    """The team channel reads as the team; an escalation is read by a manager; anything else by the owner."""
    if channel == "team_channel":
        return "team"
    return "manager" if out.message is not None and out.message.kind == "escalation" else "owner"


def render(
    out: Outgoing, channel: SendChannel, *, now: datetime, links: Links, playbook: Playbook | None = None
) -> Rendered:
    """Render for ``channel`` at ``now`` (the send time: "yesterday", "in 3 days" count from it)."""
    audience = Audience(Reader(out.locale, out.timezone, now), role_of(out, channel), links, playbook)
    if out.digest is not None:
        if channel == "email":
            return Rendered(email=render_digest_email(out.digest, audience))
        return Rendered(slack=render_digest_slack(out.digest, audience))
    if out.message is None:
        raise PayloadError("nothing to render")
    if channel == "email":
        return Rendered(email=render_email(out.message, audience))
    return Rendered(slack=render_slack(out.message, audience))


def render_payloads(
    payloads: Sequence[Mapping[str, Any]],
    channel: SendChannel,
    *,
    now: datetime,
    links: Links,
    playbook: Playbook | None = None,
) -> Rendered:
    """Read and render one outbox message as it was queued (no refresh: see ``as_it_stands``)."""
    return render(read_payloads(payloads), channel, now=now, links=links, playbook=playbook)


# --- retries -------------------------------------------------------------------------------------------------


def send_channel(channel: str) -> SendChannel:
    """How an outbox channel is sent: by email, to the team channel, or as a Slack DM."""
    if channel == "email":
        return "email"
    return "team_channel" if channel == "team_channel" else "slack"


def retry_delay(attempts: int, *, base_s: float, cap_s: float, jitter: float) -> float:
    """Seconds before the next try after ``attempts`` failed ones: exponential, capped, with "equal jitter"
    (half fixed, half random from ``jitter`` in [0, 1)) so that alerters retrying after one outage spread out
    but never retry sooner than half the backoff."""
    if attempts < 1:
        raise ValueError("attempts counts the failed tries, at least 1")
    delay: float = min(cap_s, base_s * 2.0 ** min(attempts - 1, 62))
    return delay / 2 + delay / 2 * min(max(jitter, 0.0), 1.0)
