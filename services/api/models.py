"""Response and request bodies of the /v1 API (pydantic; they make the OpenAPI document)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from schemas.events import KEY_MAX_BYTES, BoundedInstant
from schemas.vocabulary import COMPONENTS, DRIVER_CODES, Level, Locale, Severity


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot store NUL: refuse it as a 422 rather than fail in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]

# Examples shown in the OpenAPI document (and /docs), one per response body.
_ALERT: dict[str, Any] = {
    "id": 42,
    "account_id": "acme",
    "rule": "champion_left",
    "subject": "C-7",
    "severity": "critical",
    "state": "firing",
    "title": "Champion Claire Martin left",
    "fired_at": "2026-11-18T16:00:00Z",
    "updated_at": "2026-11-18T16:00:00Z",
    "acknowledged_at": None,
    "snoozed_until": None,
    "resolved_at": None,
    "clearing_since": None,
    "resolves_at": None,
}
_ACCOUNT: dict[str, Any] = {
    "account_id": "acme",
    "name": "Acme SA",
    "owner_kam_id": "kam-lea",
    "owner_name": "Léa Dubois",
    "tier": "strategic",
    "segment": "enterprise",
    "arr": "480000.0000",
    "currency": "EUR",
    "renewal_date": "2027-01-31",
    "risk": 72.5,
    "level": "high",
    "arr_at_risk": "480000.0000",
    "change_7d": 31.5,
    "as_of": "2026-11-20T10:00:00Z",
    "lifecycle": {"status": "active", "outcome": None, "at": None, "reason": None},
}
_CONVERTED: dict[str, Any] = {"currency": "EUR", "amount": "1450000.0000", "unconverted": {}}
_REPORTING: dict[str, Any] = {
    "arr": _CONVERTED,
    "arr_at_risk": {"currency": "EUR", "amount": "480000.0000", "unconverted": {}},
    "outcomes": {"renewed": 3, "churned": 1},
    "lost_arr": {"currency": "EUR", "amount": "234000.0000", "unconverted": {}},
    "net_revenue_retention": 0.91,
}
_LOSS_ACCOUNT: dict[str, Any] = {
    "account_id": "globex",
    "name": "Globex Ltd",
    "owner": {"kam_id": "kam-tom", "name": "Tom Baker"},
    "tier": "key",
    "currency": "GBP",
    "outcome": "churned",
    "outcome_at": "2026-10-30T12:00:00Z",
    "arr_before": "200000.0000",
    "arr_after": "0.0000",
    "reason": "moved to a competitor",
}


def _examples(*documents: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(documents)})


AlertState = Literal["firing", "acknowledged", "resolved"]
Money = str  # a decimal amount as a string, exact (``"480000.0000"``)
_MONEY = Field(description="Decimal amount as a string.", examples=["480000.0000"])


class OwnerOut(BaseModel):
    kam_id: str
    name: str | None = Field(description="None until the KAM's profile event arrives.")


class ComponentOut(BaseModel):
    name: str = Field(examples=["usage"])
    risk: float = Field(description="Risk of this component, 0-100.", examples=[62.5])
    weight: float = Field(examples=[0.3])


class DriverOut(BaseModel):
    component: str = Field(examples=["support"], json_schema_extra={"enum": [*COMPONENTS, "renewal"]})
    code: str = Field(
        description="Stable code of the reason (documented as an enum; a newer scorer may add codes).",
        examples=["support.urgent_open"],
        json_schema_extra={"enum": list(DRIVER_CODES)},
    )
    severity: Severity
    points: float = Field(description="Risk points this driver adds.")
    message: str = Field(description="In the caller's locale.", examples=["2 urgent tickets open for 5 days"])
    evidence: dict[str, Any]
    since: datetime | None


class OverrideOut(BaseModel):
    model_config = _examples(
        {
            "id": 3,
            "level": "low",
            "reason": "renewal signed, paperwork pending",
            "created_by": "kam-lea",
            "created_at": "2026-11-20T10:00:00Z",
            "expires_at": "2026-11-23T10:00:00Z",
        }
    )

    id: int
    level: Level
    reason: str
    created_by: str
    created_at: datetime
    expires_at: datetime


class TrendOut(BaseModel):
    risk_7d_ago: float | None
    risk_30d_ago: float | None
    change_7d: float | None = Field(description="Risk now minus risk 7 days before as_of (positive: worse).")
    change_30d: float | None


class AlertOut(BaseModel):
    model_config = _examples(_ALERT)

    id: int
    account_id: str
    rule: str = Field(examples=["usage_drop"])
    subject: str | None
    severity: Severity
    state: AlertState
    title: str = Field(description="In the caller's locale.")
    fired_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    snoozed_until: datetime | None
    resolved_at: datetime | None
    clearing_since: datetime | None = Field(
        default=None,
        description="Set while the alert is clearing: its condition clear since then, the alert held open before "
        "resolving (no message meanwhile); null while the condition holds.",
    )
    resolves_at: datetime | None = Field(
        default=None, description="While clearing: when the alert resolves unless its condition comes back."
    )


class GroupMemberOut(BaseModel):
    account_id: str
    name: str
    risk: float
    level: Level | None
    arr_share: float = Field(description="Share of the group's ARR (0..1).")
    points: float = Field(description="What this member adds to the group's risk (arr_share × risk).")


class GroupOut(BaseModel):
    risk: float = Field(description="The parent's and its subsidiaries' risks, weighted by ARR.")
    level: Level
    members: list[GroupMemberOut] = Field(description="The parent, then the subsidiaries the caller may see.")
    driving_subsidiary: GroupMemberOut | None = Field(description="The subsidiary adding the most risk.")
    subsidiaries: int = Field(description="Scored subsidiaries counted in the risk, seen or not.")


class LifecycleOut(BaseModel):
    status: Literal["active", "lost"] = Field(
        description="lost: closed by a churn (no more scoring nor alerts; its ARR counts as lost, not at risk) "
        "until a later account event reopens it."
    )
    outcome: Literal["renewed", "expanded", "downgraded", "churned"] | None = Field(
        description="The outcome newer than the account's profile, if any (it set the ARR and renewal shown)."
    )
    at: datetime | None = Field(description="When that outcome happened (for a lost account: when it was lost).")
    reason: str | None = Field(description="The outcome's reason, as given.")


class NextStepOut(BaseModel):
    code: str = Field(description="The driver code the playbook step is for.", examples=["payment.overdue"])
    action: str = Field(description="What to do, in the caller's locale.")
    due_days: int = Field(description="Within how many days of the signal.")
    due_at: datetime | None = Field(description="Due date, when the signal's start is known.")
    alert_id: int | None = Field(description="The open alert this step answers, if any.")


class AccountHealthOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": "acme",
                    "name": "Acme SA",
                    "owner": {"kam_id": "kam-lea", "name": "Léa Dubois"},
                    "tier": "strategic",
                    "segment": "enterprise",
                    "arr": "480000.0000",
                    "currency": "EUR",
                    "renewal_date": "2027-01-31",
                    "risk": 72.5,
                    "level": "high",
                    "level_since": "2026-11-18T16:00:00Z",
                    "as_of": "2026-11-20T10:00:00Z",
                    "config_version": "2026-11-01",
                    "override": None,
                    "components": [{"name": "usage", "risk": 80.0, "weight": 0.3}],
                    "drivers": [
                        {
                            "component": "relationship",
                            "code": "contact.champion_left",
                            "severity": "critical",
                            "points": 18.0,
                            "message": "Champion Claire Martin left the company",
                            "evidence": {"contact_id": "C-7"},
                            "since": "2026-11-18T16:00:00Z",
                        }
                    ],
                    "trend": {"risk_7d_ago": 41.0, "risk_30d_ago": 35.5, "change_7d": 31.5, "change_30d": 37.0},
                    "open_alerts": [],
                    "lifecycle": {"status": "active", "outcome": None, "at": None, "reason": None},
                    "next_steps": [
                        {
                            "code": "relationship.champion_left",
                            "action": "Identify the new champion and book an introduction",
                            "due_days": 14,
                            "due_at": "2026-12-02T16:00:00Z",
                            "alert_id": 42,
                        }
                    ],
                    "locale": "en",
                }
            ]
        }
    )

    account_id: str
    name: str
    owner: OwnerOut
    tier: str
    segment: str | None
    arr: Money = _MONEY
    currency: str
    renewal_date: date | None
    risk: float | None = Field(description="0-100; None until the account is first scored.")
    level: Level | None
    level_since: datetime | None
    as_of: datetime | None = Field(description="Time of the signals the score reflects.")
    config_version: str | None
    override: OverrideOut | None = Field(description="Active manual level pin, with who, why and until when.")
    components: list[ComponentOut]
    drivers: list[DriverOut]
    trend: TrendOut
    open_alerts: list[AlertOut]
    group: GroupOut | None = Field(default=None, description="For a parent account: its group roll-up.")
    lifecycle: LifecycleOut
    next_steps: list[NextStepOut] = Field(
        description="The playbook's next step for each open alert, then for the strongest drivers (none when lost)."
    )
    locale: Locale


class AccountSummaryOut(BaseModel):
    account_id: str
    name: str
    owner_kam_id: str
    owner_name: str | None = Field(description="None until the KAM's profile event arrives.")
    tier: str
    segment: str | None
    arr: Money = _MONEY
    currency: str
    renewal_date: date | None
    risk: float | None
    level: Level | None
    arr_at_risk: Money = Field(description="The ARR when the level is high or critical, else 0 (0 for a lost account).")
    change_7d: float | None
    as_of: datetime | None
    lifecycle: LifecycleOut


class AccountPage(BaseModel):
    model_config = _examples({"items": [_ACCOUNT], "next_cursor": "WyI3Mi41IiwiYWNtZSJd"})

    items: list[AccountSummaryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; None on the last page.")


class HistoryPoint(BaseModel):
    as_of: datetime
    risk: float
    level: Level
    components: dict[str, float]
    driver_codes: list[str]


class HistoryOut(BaseModel):
    model_config = _examples(
        {
            "account_id": "acme",
            "points": [
                {
                    "as_of": "2026-11-19T23:59:00Z",
                    "risk": 72.5,
                    "level": "high",
                    "components": {
                        "usage": 80.0,
                        "support": 55.0,
                        "payment": 0.0,
                        "relationship": 90.0,
                        "engagement": 40.0,
                    },
                    "driver_codes": ["relationship.champion_left", "usage.drop"],
                }
            ],
        }
    )

    account_id: str
    points: list[HistoryPoint] = Field(description="The last score of each UTC day, oldest first.")


class TimelineItem(BaseModel):
    at: datetime
    kind: Literal["event", "alert", "alert_transition", "level_change"]
    type: str = Field(examples=["kamwatch.support_ticket.v1", "alert.fired", "alert.acknowledged", "level.high"])
    summary: str
    id: str = Field(description="Stable id of the item within the timeline.")
    data: dict[str, Any]


class TimelinePage(BaseModel):
    model_config = _examples(
        {
            "account_id": "acme",
            "items": [
                {
                    "at": "2026-11-18T16:00:00Z",
                    "kind": "event",
                    "type": "kamwatch.contact_change.v1",
                    "summary": "contact C-7 left_company (champion)",
                    "id": "e:crm:c-1",
                    "data": {"contact_id": "C-7", "change": "left_company", "role": "champion"},
                }
            ],
            "next_cursor": None,
        }
    )

    account_id: str
    items: list[TimelineItem] = Field(description="Newest first.")
    next_cursor: str | None


class LevelBucket(BaseModel):
    accounts: int
    arr: dict[str, Money] = Field(description="Sum of ARR per currency.", examples=[{"EUR": "1250000.0000"}])


class ConvertedOut(BaseModel):
    currency: str = Field(description="The reporting currency (KAMWATCH_REPORTING_CURRENCY).", examples=["EUR"])
    amount: Money = Field(description="The sum of what converts, in the reporting currency.", examples=["730000"])
    unconverted: dict[str, Money] = Field(
        description="Amounts in currencies the exchange rates file has no rate for, each in its own currency "
        "(never added to `amount`).",
        examples=[{"JPY": "12000000.0000"}],
    )


class ReportingOut(BaseModel):
    arr: ConvertedOut
    arr_at_risk: ConvertedOut = Field(description="ARR of the high and critical accounts.")
    outcomes: dict[str, int] = Field(
        description="Outcomes booked in the period, by kind.", examples=[{"renewed": 12, "churned": 1}]
    )
    lost_arr: ConvertedOut = Field(description="ARR lost in the period: churned ARR, and what downgrades took off.")
    net_revenue_retention: float | None = Field(
        description="ARR after over ARR before for the period's outcomes, in the reporting currency (1.05 = 105 %); "
        "null without outcomes.",
        examples=[1.12],
    )


class GroupSummary(BaseModel):
    key: str = Field(description="KAM id or tier.")
    name: str | None = Field(default=None, description="The KAM's name (null for a tier, or a KAM not yet known).")
    accounts: int
    by_level: dict[str, int]
    arr: dict[str, Money] = Field(description="Per original currency.")
    arr_at_risk: dict[str, Money] = Field(description="Per original currency.")
    arr_lost: dict[str, Money] = Field(
        default_factory=dict, description="ARR of the accounts lost (churned, not reopened since), per currency."
    )
    reporting: ReportingOut = Field(description="The same in the reporting currency, with the period's outcomes.")


class RetentionOut(BaseModel):
    period_from: date = Field(alias="from")
    period_to: date = Field(alias="to")
    outcomes: dict[str, int] = Field(examples=[{"renewed": 12, "churned": 1}])
    arr_before: dict[str, Money]
    arr_after: dict[str, Money]
    net_revenue_retention: dict[str, float | None] = Field(
        description="Per currency: ARR after over ARR before for the outcomes of the period (1.05 = 105 %)."
    )

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class PortfolioSummary(BaseModel):
    model_config = _examples(
        {
            "accounts": 12,
            "reporting_currency": "EUR",
            "rates_as_of": "2026-11-30",
            "by_level": {"high": {"accounts": 1, "arr": {"EUR": "480000.0000"}}},
            "arr": {"EUR": "1250000.0000", "GBP": "200000.0000"},
            "arr_at_risk": {"EUR": "480000.0000"},
            "reporting": _REPORTING,
            "by_kam": [
                {
                    "key": "kam-lea",
                    "name": "Léa Dubois",
                    "accounts": 6,
                    "by_level": {"low": 4, "medium": 1, "high": 1, "critical": 0, "unscored": 0},
                    "arr": {"EUR": "750000.0000"},
                    "arr_at_risk": {"EUR": "480000.0000"},
                    "reporting": _REPORTING,
                }
            ],
            "by_tier": [],
            "retention": {
                "from": "2025-11-20",
                "to": "2026-11-21",
                "outcomes": {"renewed": 3, "churned": 1},
                "arr_before": {"EUR": "600000.0000", "GBP": "200000.0000"},
                "arr_after": {"EUR": "630000.0000", "GBP": "0.0000"},
                "net_revenue_retention": {"EUR": 1.05, "GBP": 0.0},
            },
        }
    )

    accounts: int
    reporting_currency: str = Field(examples=["EUR"])
    rates_as_of: str | None = Field(description="The `as_of` of the operator's exchange rates file, if given.")
    by_level: dict[str, LevelBucket] = Field(
        description="low, medium, high, critical, unscored, and lost (accounts closed by a churn: not at risk)."
    )
    arr: dict[str, Money]
    arr_at_risk: dict[str, Money] = Field(description="ARR of the high and critical accounts, per currency.")
    arr_lost: dict[str, Money] = Field(
        default_factory=dict, description="ARR of the accounts lost (churned, not reopened since), per currency."
    )
    reporting: ReportingOut = Field(description="Sums in the reporting currency and the period's outcomes.")
    by_kam: list[GroupSummary]
    by_tier: list[GroupSummary]
    retention: RetentionOut


class AlertPage(BaseModel):
    model_config = _examples({"items": [_ALERT], "next_cursor": None})

    items: list[AlertOut]
    next_cursor: str | None


class NoteIn(BaseModel):
    model_config = _examples({"note": "called the new COO, meeting Thursday"})

    note: Text | None = Field(default=None, max_length=2000)


class SnoozeIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"minutes": 1440, "note": "call booked Monday"}]})

    until: BoundedInstant | None = Field(
        default=None, description="Snooze until this time (before 2200, UTC), or give `minutes`."
    )
    minutes: int | None = Field(default=None, ge=1, le=90 * 24 * 60)
    note: Text | None = Field(default=None, max_length=2000)


class FeedbackIn(BaseModel):
    model_config = _examples({"verdict": "useful", "comment": "we booked a review the same day"})

    verdict: Literal["useful", "false_alarm"]
    comment: Text | None = Field(default=None, max_length=2000)


class FeedbackOut(BaseModel):
    model_config = _examples({"id": 7, "alert_id": 42, "verdict": "useful"})

    id: int
    alert_id: int
    verdict: Literal["useful", "false_alarm"]


class RulePrecisionOut(BaseModel):
    rule: str
    alerts: int = Field(description="Alerts the rule opened.")
    judged: int = Field(description="Alerts with a verdict (each counted once, by its newest verdict).")
    useful: int
    false_alarms: int
    precision: float | None = Field(description="useful / judged; null while nothing is judged.")


class PrecisionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "rules": [
                        {
                            "rule": "usage_drop",
                            "alerts": 14,
                            "judged": 9,
                            "useful": 7,
                            "false_alarms": 2,
                            "precision": 0.7778,
                        }
                    ]
                }
            ]
        }
    )

    rules: list[RulePrecisionOut]


class OverrideIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"level": "low", "reason": "renewal signed, paperwork pending", "hours": 72}]}
    )

    level: Level
    reason: Text = Field(min_length=1, max_length=2000)
    expires_at: BoundedInstant | None = Field(
        default=None, description="End of the pin (before 2200, UTC), or give `hours`."
    )
    hours: int | None = Field(default=None, ge=1, le=24 * 180)


class WidgetTokenIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"account_id": "acme", "ttl_seconds": 900}]})

    account_id: Text = Field(min_length=1, max_length=KEY_MAX_BYTES)
    kam_id: Text | None = Field(
        default=None, max_length=KEY_MAX_BYTES, description="Who acts through the widget (audit)."
    )
    ttl_seconds: int = Field(
        default=900, ge=60, le=24 * 3600, description="Lifetime: mint one per page view (at most a day)."
    )


class WidgetTokenOut(BaseModel):
    model_config = _examples(
        {
            "token": "WyJhY21lIiwia2FtLWxlYSIsMTc5NjQ5NzgwOV0.9BxEp75wMgYLt6KHPGcveXK2GHdOdHzILPNWIUtpDXQ",
            "account_id": "acme",
            "kam_id": "kam-lea",
            "expires_at": "2026-11-20T11:00:00Z",
            "url": "https://kamwatch.example.com/widget/accounts/acme?token=WyJhY21lIiwia2FtLWxlYSIsMTc5NjQ5NzgwOV0.9Bx",
        }
    )

    token: str
    account_id: str
    kam_id: str | None
    expires_at: datetime
    url: str = Field(description="The widget URL to embed in an iframe.")


class LossAccountOut(BaseModel):
    account_id: str
    name: str
    owner: OwnerOut
    tier: str
    currency: str
    outcome: Literal["churned", "downgraded"]
    outcome_at: datetime
    arr_before: Money | None
    arr_after: Money | None
    reason: str | None


class RuleActionOut(BaseModel):
    at: datetime
    what: str = Field(description="acknowledged, resolved, firing (reopened), or feedback:useful|false_alarm.")
    actor: str
    via: str = Field(examples=["slack", "api", "widget", "page", "cli"])
    alert_id: int


class RuleStoryOut(BaseModel):
    rule: str = Field(examples=["champion_left"])
    label: str = Field(description="The rule's name in the caller's locale.", examples=["Champion left"])
    would_fire_at: datetime | None = Field(
        description="First moment (a midnight of the window, in hindsight, with today's rules) the condition held."
    )
    fired_at: datetime | None = Field(description="When the rule's first alert of the window fired (event time).")
    told_at: datetime | None = Field(description="When a notification carrying it first went out.")
    acknowledged_at: datetime | None
    lead_days: float | None = Field(description="Days from told (else fired) to the outcome.")
    lost_days: float | None = Field(description="Days from would-have-fired to told (or to the outcome, never told).")
    actions: list[RuleActionOut]


class RuleNameOut(BaseModel):
    rule: str
    label: str


class SentOut(BaseModel):
    sent_at: datetime
    channel: str = Field(examples=["slack", "email", "team_channel"])
    kind: str = Field(examples=["immediate", "digest", "escalation", "reminder"])
    alert_ids: list[int]


class SignalOut(BaseModel):
    at: datetime
    type: str = Field(examples=["kamwatch.contact_change.v1"])
    data: dict[str, Any]


class RiskPointOut(BaseModel):
    at: datetime
    risk: float
    level: Level


class PostMortemOut(BaseModel):
    model_config = _examples(
        {
            "account": _LOSS_ACCOUNT,
            "window_days": 180,
            "first_told_at": "2026-08-16T12:02:00Z",
            "lead_days": 74.9,
            "possible_lead_days": 75.0,
            "rules": [
                {
                    "rule": "champion_left",
                    "label": "Champion left",
                    "would_fire_at": "2026-08-16T12:00:00Z",
                    "fired_at": "2026-08-16T12:00:00Z",
                    "told_at": "2026-08-16T12:02:00Z",
                    "acknowledged_at": "2026-08-18T12:00:00Z",
                    "lead_days": 74.9,
                    "lost_days": 0.0,
                    "actions": [
                        {
                            "at": "2026-08-18T12:00:00Z",
                            "what": "acknowledged",
                            "actor": "kam-tom",
                            "via": "slack",
                            "alert_id": 9,
                        }
                    ],
                }
            ],
            "silent_rules": [{"rule": "payment_late", "label": "Late payment"}],
            "notifications": [
                {"sent_at": "2026-08-16T12:02:00Z", "channel": "slack", "kind": "immediate", "alert_ids": [9]}
            ],
            "signals": [
                {
                    "at": "2026-08-16T12:00:00Z",
                    "type": "kamwatch.contact_change.v1",
                    "data": {"contact_id": "globex-c1", "change": "left_company", "role": "champion"},
                }
            ],
            "risk": [{"at": "2026-08-17T00:00:00Z", "risk": 67.1, "level": "high"}],
        }
    )

    account: LossAccountOut
    window_days: int = Field(description="Days before the outcome the post-mortem looks at.", examples=[180])
    first_told_at: datetime | None = Field(description="The first notification about the account in the window.")
    lead_days: float | None = Field(description="Days from the first notification to the outcome.")
    possible_lead_days: float | None = Field(description="Days from the first rule that would have fired.")
    rules: list[RuleStoryOut] = Field(description="Rules that fired or would have fired, earliest first.")
    silent_rules: list[RuleNameOut] = Field(description="Rules of the account's tier that never would have fired.")
    notifications: list[SentOut]
    signals: list[SignalOut] = Field(description="Events of the window (usage aside), oldest first.")
    risk: list[RiskPointOut] = Field(description="Risk and level replayed at each midnight of the window.")


class LossOut(BaseModel):
    account: LossAccountOut
    first_alert_at: datetime | None
    first_told_at: datetime | None
    lead_days: float | None = Field(description="Days from the first notification (else alert) to the outcome.")


class LossesOut(BaseModel):
    period_from: date = Field(alias="from")
    period_to: date = Field(alias="to")
    items: list[LossOut] = Field(description="Newest first.")

    model_config = ConfigDict(
        populate_by_name=True,
        serialize_by_alias=True,
        json_schema_extra={
            "examples": [
                {
                    "from": "2026-08-22",
                    "to": "2026-11-20",
                    "items": [
                        {
                            "account": _LOSS_ACCOUNT,
                            "first_alert_at": "2026-08-16T12:00:00Z",
                            "first_told_at": "2026-08-16T12:02:00Z",
                            "lead_days": 74.9,
                        }
                    ],
                }
            ]
        },
    )


UnsentStatus = Literal["failed", "undeliverable"]


class UnsentNotificationOut(BaseModel):
    id: int
    kind: str
    channel: str = Field(description="slack, email or team_channel")
    recipient: str = Field(description="The KAM id, or the team channel.")
    kam_id: str | None
    alert_ids: list[int]
    status: UnsentStatus
    attempts: int
    last_error: str | None
    created_at: datetime
    failing_since: datetime | None = Field(description="First failed attempt of the last run of failures.")


class UnsentNotificationPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": 12,
                            "kind": "alert",
                            "channel": "email",
                            "recipient": "kam-04",
                            "kam_id": "kam-04",
                            "alert_ids": [301],
                            "status": "failed",
                            "attempts": 9,
                            "last_error": "SMTP 451: try again later",
                            "created_at": "2026-11-30T08:00:00Z",
                            "failing_since": "2026-11-30T08:00:02Z",
                        }
                    ]
                }
            ]
        }
    )

    items: list[UnsentNotificationOut]


class NotificationRetryIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "failed"}, {"ids": [12, 13]}]})

    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] | None = Field(
        default=None, max_length=10_000, description="Only these notifications (default: every one given up on)."
    )
    status: UnsentStatus | None = Field(default=None, description="Only this status (default: both).")


class NotificationRetryOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"retried": [12, 13]}]})

    retried: list[int] = Field(description="Notifications queued again, due now.")
