"""Pure helpers of the notification outbox: the JSON payload of a queued message, digest merging, retry timing.

A payload holds what rendering needs (the account snapshot at alert time, the alert items, the recipient's
address, locale and timezone), not the rendered text: the sender renders at send time, so digest rows queued by
several transactions can be merged into one message. No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, cast

from alerts.messages import (
    AlertItem,
    AlertMessage,
    Digest,
    DigestSection,
    Email,
    MessageKind,
    render_digest_email,
    render_digest_slack,
    render_email,
    render_slack,
)
from alerts.model import AccountSnapshot
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


def render_payloads(payloads: Sequence[Mapping[str, Any]], channel: SendChannel, *, base_url: str) -> Rendered:
    """Render one outbox message (several payloads only for the parts of one digest) for ``channel``."""
    if not payloads:
        raise PayloadError("nothing to render")
    first = payloads[0]
    locale: Locale = "fr" if first.get("locale") == "fr" else "en"
    timezone = str(first.get("timezone") or "UTC")
    if payload_format(first) == "digest":
        digest = merge_digests(payloads)
        if channel == "email":
            return Rendered(email=render_digest_email(digest, locale=locale, timezone=timezone, base_url=base_url))
        return Rendered(slack=render_digest_slack(digest, locale=locale, timezone=timezone, base_url=base_url))
    if len(payloads) != 1:
        raise PayloadError("only digests are merged")
    message = message_from_payload(first)
    if channel == "email":
        return Rendered(email=render_email(message, locale=locale, timezone=timezone, base_url=base_url))
    return Rendered(slack=render_slack(message, locale=locale, timezone=timezone, base_url=base_url))


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
