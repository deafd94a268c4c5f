"""Builders for the alerting tests: sensible defaults, override what the test is about."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from alerts.config import AlertsConfig, load_rules_config
from alerts.model import AccountSnapshot, Kam, OpenAlert
from schemas.vocabulary import Driver, EvidenceValue, Severity
from tests.configs import RULES_PATH

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
# The mechanism tests' own rules (the shipped ones come from kamwatch tune and move); SHIPPED for what ships.
CONFIG = load_rules_config(RULES_PATH)
SHIPPED = load_rules_config(None)


def ago(days: float = 0, hours: float = 0) -> datetime:
    return AS_OF - timedelta(days=days, hours=hours)


def driver(
    code: str,
    points: float = 50.0,
    *,
    since: datetime | None = None,
    evidence: dict[str, EvidenceValue] | None = None,
    en: str | None = None,
    fr: str | None = None,
    severity: Severity = "warning",
) -> Driver:
    return Driver(
        code=code,
        component=code.split(".")[0],
        severity=severity,
        points=points,
        evidence=evidence or {},
        since=since,
        message_en=en or f"{code} en",
        message_fr=fr or f"{code} fr",
    )


def snapshot(*drivers: Driver, **overrides: Any) -> AccountSnapshot:
    base = AccountSnapshot(
        account_id="acme",
        name="Acme SA",
        tier="strategic",
        arr=Decimal("480000"),
        currency="EUR",
        renewal_date=None,
        owner_kam_id="kam-lea",
        risk=20.0,
        level="low",
        risk_7d_ago=None,
        level_since=None,
        drivers=drivers,
        as_of=AS_OF,
    )
    return replace(base, **overrides)


def open_alert(key: str = "acme:usage_drop", alert_id: int = 1, **overrides: Any) -> OpenAlert:
    account_id, rule, *rest = key.split(":")
    base = OpenAlert(
        alert_id=alert_id,
        dedup_key=key,
        account_id=account_id,
        rule=rule,
        subject=rest[0] if rest else None,
        severity="warning",
        state="firing",
        fired_at=ago(days=2),
    )
    return replace(base, **overrides)


def kam(kam_id: str = "kam-lea", **overrides: Any) -> Kam:
    base = Kam(
        kam_id=kam_id,
        name="Léa Dubois",
        email=f"{kam_id}@example.com",
        slack_user_id="U024BE7LH",
        manager_kam_id="kam-marc",
        locale="fr",
        timezone="Europe/Paris",
    )
    return replace(base, **overrides)


def with_policy(config: AlertsConfig = CONFIG, **changes: Any) -> AlertsConfig:
    return config.model_copy(update={"policy": config.policy.model_copy(update=changes)})


def with_rule(rule: str, config: AlertsConfig = CONFIG, **changes: Any) -> AlertsConfig:
    rules = config.rules
    updated = getattr(rules, rule).model_copy(update=changes)
    return config.model_copy(update={"rules": rules.model_copy(update={rule: updated})})


def day(y: int, m: int, d: int) -> date:
    return date(y, m, d)


# An escalation's cast: Léa owns acme, Marc (no manager) does not; a critical alert told Léa 25 hours ago.
KAMS = {k.kam_id: k for k in (kam("kam-lea"), kam("kam-marc", name="Marc Petit", manager_kam_id=None))}
OWNERS: dict[str, str | None] = {"acme": "kam-lea"}


def critical(**kw: object) -> OpenAlert:
    defaults: dict[str, object] = {"severity": "critical", "fired_at": ago(days=3), "last_notified_at": ago(hours=25)}
    defaults.update(kw)
    return open_alert("acme:champion_left:C-7", alert_id=5, **defaults)
