"""Rows into API documents (plain dicts, ready for orjson): locale picking, trends, portfolio sums."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from health_engine.config import Levels
from health_engine.groups import Contribution, Member, roll_up
from schemas.vocabulary import AT_RISK_LEVELS, LEVELS, TIERS, Locale
from services.api.guidance import lifecycle_document
from services.platform.currency import ExchangeRates

LOST = "lost"
"""The level the portfolio counts a closed (churned) account at: its ARR is lost, not at risk."""


def pick_locale(requested: str | None, accept_language: str | None) -> Locale:
    """``?locale=`` wins, then the first of en/fr in Accept-Language (by q-value), then English."""
    if requested in ("en", "fr"):
        return requested  # type: ignore[return-value]
    best: tuple[float, Locale] | None = None
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        language = tag.strip().lower()[:2]
        if language not in ("en", "fr"):
            continue
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if best is None or quality > best[0]:
            best = (quality, language)  # type: ignore[assignment]
    return best[1] if best else "en"


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def alert_document(row: Mapping[Any, Any], locale: Locale) -> dict[str, Any]:
    return {
        "id": row["id"],
        "account_id": row["account_id"],
        "rule": row["rule"],
        "subject": row["subject"],
        "severity": row["severity"],
        "state": row["state"],
        "title": row["title_fr"] if locale == "fr" else row["title_en"],
        "fired_at": row["fired_at"],
        "updated_at": row["updated_at"],
        "acknowledged_at": row["acknowledged_at"],
        "snoozed_until": row["snoozed_until"],
        "resolved_at": row["resolved_at"],
        "clearing_since": row.get("clearing_since"),
        "resolves_at": row.get("resolves_at"),
    }


def _driver(driver: Mapping[Any, Any], locale: Locale) -> dict[str, Any]:
    return {
        "component": driver.get("component", ""),
        "code": driver.get("code", ""),
        "severity": driver.get("severity", "info"),
        "points": float(driver.get("points") or 0),
        "message": driver.get("message_fr" if locale == "fr" else "message_en") or driver.get("code", ""),
        "evidence": driver.get("evidence") or {},
        "since": driver.get("since"),
    }


def group_document(
    row: Mapping[Any, Any], levels: Levels, visible: Callable[[str | None], bool]
) -> dict[str, Any] | None:
    """The parent's risk rolled up with its scored subsidiaries (ARR-weighted); subsidiaries the caller may
    not see count in the figure but are not named."""
    subsidiaries = row["subsidiaries"] or []
    if not subsidiaries or row["risk"] is None:
        return None
    named = {s["account_id"]: s for s in subsidiaries if visible(s["owner_kam_id"])}
    group = roll_up(
        Member(row["account_id"], Decimal(row["arr"]), float(row["risk"])),
        [Member(s["account_id"], Decimal(s["arr"]), float(s["risk"])) for s in subsidiaries],
        levels,
    )

    def member(share: Contribution) -> dict[str, Any]:
        found = named.get(share.account_id)
        return {
            "account_id": share.account_id,
            "name": found["name"] if found else row["name"],
            "risk": share.risk,
            "level": found["level"] if found else row["level"],
            "arr_share": share.weight,
            "points": share.points,
        }

    shown = [m for m in group.members if m.account_id == row["account_id"] or m.account_id in named]
    driver = group.driver if group.driver is not None and group.driver.account_id in named else None
    return {
        "risk": group.risk,
        "level": group.level,
        "members": [member(m) for m in shown],
        "driving_subsidiary": member(driver) if driver else None,
        "subsidiaries": len(subsidiaries),
    }


def health_document(row: Mapping[Any, Any], locale: Locale) -> dict[str, Any]:
    """The body of GET /v1/accounts/{id}/health from the single-query row."""
    risk = row["risk"]
    risk_7d, risk_30d = row["risk_7d"], row["risk_30d"]
    components = row["components"] or []
    drivers = sorted(row["drivers"] or [], key=lambda d: -float(d.get("points") or 0))
    return {
        "account_id": row["account_id"],
        "name": row["name"],
        "owner": {"kam_id": row["owner_kam_id"], "name": row["owner_name"]},
        "tier": row["tier"],
        "segment": row["segment"],
        "arr": row["arr"],
        "currency": row["currency"],
        "renewal_date": row["renewal_date"],
        "risk": risk,
        "level": row["level"],
        "level_since": row["level_since"],
        "as_of": row["as_of"],
        "config_version": row["config_version"],
        "override": row["override"],
        "components": [
            {"name": c.get("name", ""), "risk": float(c.get("risk") or 0), "weight": float(c.get("weight") or 0)}
            for c in components
        ],
        "drivers": [_driver(d, locale) for d in drivers],
        "trend": {
            "risk_7d_ago": risk_7d,
            "risk_30d_ago": risk_30d,
            "change_7d": None if risk is None or risk_7d is None else round(risk - risk_7d, 1),
            "change_30d": None if risk is None or risk_30d is None else round(risk - risk_30d, 1),
        },
        "open_alerts": [alert_document(a, locale) for a in row["open_alerts"]],
        "locale": locale,
    }


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value))


def encode(document: Any) -> bytes:
    return orjson.dumps(document, default=_default)


def etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def etag_matches(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in candidates or tag in candidates


def account_summary(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "account_id": row["account_id"],
        "name": row["name"],
        "owner_kam_id": row["owner_kam_id"],
        "owner_name": row["owner_name"],
        "tier": row["tier"],
        "segment": row["segment"],
        "arr": str(row["arr"]),
        "currency": row["currency"],
        "renewal_date": row["renewal_date"],
        "risk": _float(row["risk"]),
        "level": row["level"],
        "arr_at_risk": str(row["arr_at_risk"]),
        "change_7d": _float(row["change_7d"]),
        "as_of": row["as_of"],
        "lifecycle": lifecycle_document(row),
    }


def history_point(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "as_of": row["as_of"],
        "risk": float(row["risk"]),
        "level": row["level"],
        "components": {name: float(value) for name, value in (row["components"] or {}).items()},
        "driver_codes": list(row["driver_codes"] or []),
    }


def _money(sums: Mapping[str, Decimal]) -> dict[str, str]:
    return {currency: str(amount) for currency, amount in sorted(sums.items())}


def converted_document(sums: Mapping[str, Decimal], rates: ExchangeRates) -> dict[str, Any]:
    """Amounts per currency as one sum in the reporting currency, and apart what no rate converts."""
    total = rates.total(sums)
    return {"currency": total.currency, "amount": str(total.amount), "unconverted": _money(total.unconverted)}


class _Retention:
    """Outcomes of a period: counts, ARR before and after per currency, lost ARR (churned, downgraded)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)
        self.before: dict[str, Decimal] = defaultdict(Decimal)
        self.after: dict[str, Decimal] = defaultdict(Decimal)
        self.lost: dict[str, Decimal] = defaultdict(Decimal)

    def add(self, row: Mapping[Any, Any]) -> None:
        self.counts[row["outcome"]] += int(row["n"])
        if row["arr_before"] is None:
            return
        before, after = Decimal(row["arr_before"]), Decimal(row["arr_after"] or 0)
        self.before[row["currency"]] += before
        self.after[row["currency"]] += after
        self.lost[row["currency"]] += max(before - after, Decimal(0))

    def nrr(self, rates: ExchangeRates) -> float | None:
        """ARR after over ARR before, both in the reporting currency (what converts)."""
        before, after = rates.total(self.before), rates.total(self.after)
        return round(float(after.amount / before.amount), 4) if before.amount else None

    def document(self, rates: ExchangeRates) -> dict[str, Any]:
        return {
            "outcomes": dict(self.counts),
            "lost_arr": converted_document(self.lost, rates),
            "net_revenue_retention": self.nrr(rates),
        }


class _Group:
    def __init__(self) -> None:
        self.name: str | None = None
        self.accounts = 0
        self.by_level: dict[str, int] = dict.fromkeys((*LEVELS, "unscored", LOST), 0)
        self.arr: dict[str, Decimal] = defaultdict(Decimal)
        self.arr_at_risk: dict[str, Decimal] = defaultdict(Decimal)
        self.retention = _Retention()
        self.arr_lost: dict[str, Decimal] = defaultdict(Decimal)

    def add(self, level: str, currency: str, count: int, arr: Decimal) -> None:
        self.accounts += count
        self.by_level[level] = self.by_level.get(level, 0) + count
        self.arr[currency] += arr
        if level in AT_RISK_LEVELS:
            self.arr_at_risk[currency] += arr
        elif level == LOST:
            self.arr_lost[currency] += arr

    def document(self, key: str, rates: ExchangeRates) -> dict[str, Any]:
        return {
            "key": key,
            "name": self.name,
            "accounts": self.accounts,
            "by_level": self.by_level,
            "arr": _money(self.arr),
            "arr_at_risk": _money(self.arr_at_risk),
            "arr_lost": _money(self.arr_lost),
            "reporting": {
                "arr": converted_document(self.arr, rates),
                "arr_at_risk": converted_document(self.arr_at_risk, rates),
                **self.retention.document(rates),
            },
        }


def portfolio_document(
    groups: Iterable[Mapping[Any, Any]],
    outcomes: Iterable[Mapping[Any, Any]],
    start: date,
    end: date,
    rates: ExchangeRates,
) -> dict[str, Any]:
    """Sums by level, KAM and tier in each original currency and in the reporting currency (``rates``), and the
    period's outcomes: net revenue retention and lost ARR, in all and per KAM and tier."""
    total = _Group()
    levels: dict[str, tuple[int, dict[str, Decimal]]] = {
        level: (0, defaultdict(Decimal)) for level in (*LEVELS, "unscored", LOST)
    }
    by_kam: dict[str, _Group] = defaultdict(_Group)
    by_tier: dict[str, _Group] = defaultdict(_Group)
    for row in groups:
        level, currency, count, arr = row["level"], row["currency"], int(row["accounts"]), Decimal(row["arr"])
        total.add(level, currency, count, arr)
        kam = by_kam[row["owner_kam_id"]]
        kam.name = row["kam_name"]
        kam.add(level, currency, count, arr)
        by_tier[row["tier"]].add(level, currency, count, arr)
        n, sums = levels.setdefault(level, (0, defaultdict(Decimal)))
        sums[currency] += arr
        levels[level] = (n + count, sums)
    for row in outcomes:
        total.retention.add(row)
        by_kam[row["owner_kam_id"]].retention.add(row)
        if by_kam[row["owner_kam_id"]].name is None:
            by_kam[row["owner_kam_id"]].name = row["kam_name"]
        by_tier[row["tier"]].retention.add(row)
    retention = total.retention
    return {
        "accounts": total.accounts,
        "reporting_currency": rates.reporting,
        "rates_as_of": rates.as_of,
        "by_level": {level: {"accounts": n, "arr": _money(sums)} for level, (n, sums) in levels.items()},
        "arr": _money(total.arr),
        "arr_at_risk": _money(total.arr_at_risk),
        "arr_lost": _money(total.arr_lost),
        "reporting": {
            "arr": converted_document(total.arr, rates),
            "arr_at_risk": converted_document(total.arr_at_risk, rates),
            **retention.document(rates),
        },
        "by_kam": [
            group.document(key, rates)
            for key, group in sorted(by_kam.items(), key=lambda kv: (-kv[1].accounts, kv[1].name or kv[0]))
        ],
        "by_tier": [
            group.document(key, rates) for key, group in sorted(by_tier.items(), key=lambda kv: _tier_rank(kv[0]))
        ],
        "retention": {
            "from": start,
            "to": end,
            "outcomes": dict(retention.counts),
            "arr_before": _money(retention.before),
            "arr_after": _money(retention.after),
            "net_revenue_retention": {
                currency: (round(float(retention.after[currency] / amount), 4) if amount else None)
                for currency, amount in sorted(retention.before.items())
            },
        },
    }


def _tier_rank(tier: str) -> tuple[int, str]:
    return (TIERS.index(tier) if tier in TIERS else len(TIERS), tier)


_TYPE_WORDS = {
    "kamwatch.usage.v1": "usage",
    "kamwatch.support_ticket.v1": "ticket",
    "kamwatch.payment.v1": "invoice",
    "kamwatch.contact_change.v1": "contact",
    "kamwatch.engagement.v1": "engagement",
    "kamwatch.account.v1": "account profile",
    "kamwatch.outcome.v1": "outcome",
}


def timeline_item(row: Mapping[Any, Any], locale: Locale) -> dict[str, Any]:
    """One timeline entry with a one-line summary (raw events show their data; alerts their title)."""
    kind, data = row["kind"], dict(row["data"] or {})
    if kind == "event":
        payload = data.get("data") if isinstance(data.get("data"), dict) else {}
        assert isinstance(payload, dict)
        words = [_TYPE_WORDS.get(row["type"], row["type"])]
        for field in ("ticket_id", "invoice_id", "contact_id", "kind", "metric", "status", "change", "outcome"):
            if field in payload:
                words.append(str(payload[field]))
        for field in ("priority", "role", "amount"):
            if field in payload:
                words.append(f"({payload[field]})")
        summary = " ".join(words)
        data = payload
    elif kind == "alert":
        summary = data.get("title_fr" if locale == "fr" else "title_en") or data.get("rule", "")
    elif kind == "alert_transition":
        summary = f"{data.get('rule')}: {data.get('from_state')} → {data.get('to_state')} ({data.get('actor')})"
    else:
        summary = f"{data.get('previous') or '-'} → {data.get('level')}"
    return {"at": row["at"], "kind": kind, "type": row["type"], "summary": summary, "id": row["item_id"], "data": data}


def is_past(moment: datetime | None, now: datetime) -> bool:
    return moment is not None and moment <= now
