"""Response and request bodies of the /v1 API (pydantic; they make the OpenAPI document)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from schemas.events import KEY_MAX_BYTES, BoundedInstant
from schemas.vocabulary import Level, Locale, Severity


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot store NUL: refuse it as a 422 rather than fail in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
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
    component: str = Field(examples=["support"])
    code: str = Field(examples=["support.urgent_open"])
    severity: Severity
    points: float = Field(description="Risk points this driver adds.")
    message: str = Field(description="In the caller's locale.", examples=["2 urgent tickets open for 5 days"])
    evidence: dict[str, Any]
    since: datetime | None


class OverrideOut(BaseModel):
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
    locale: Locale


class AccountSummaryOut(BaseModel):
    account_id: str
    name: str
    owner_kam_id: str
    tier: str
    segment: str | None
    arr: Money = _MONEY
    currency: str
    renewal_date: date | None
    risk: float | None
    level: Level | None
    arr_at_risk: Money = Field(description="The ARR when the level is high or critical, else 0.")
    change_7d: float | None
    as_of: datetime | None


class AccountPage(BaseModel):
    items: list[AccountSummaryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; None on the last page.")


class HistoryPoint(BaseModel):
    as_of: datetime
    risk: float
    level: Level
    components: dict[str, float]
    driver_codes: list[str]


class HistoryOut(BaseModel):
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
    account_id: str
    items: list[TimelineItem] = Field(description="Newest first.")
    next_cursor: str | None


class LevelBucket(BaseModel):
    accounts: int
    arr: dict[str, Money] = Field(description="Sum of ARR per currency.", examples=[{"EUR": "1250000.0000"}])


class GroupSummary(BaseModel):
    key: str = Field(description="KAM id or tier.")
    name: str | None = None
    accounts: int
    by_level: dict[str, int]
    arr: dict[str, Money]
    arr_at_risk: dict[str, Money]


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
    accounts: int
    by_level: dict[str, LevelBucket] = Field(description="low, medium, high, critical, and unscored.")
    arr: dict[str, Money]
    arr_at_risk: dict[str, Money] = Field(description="ARR of the high and critical accounts, per currency.")
    by_kam: list[GroupSummary]
    by_tier: list[GroupSummary]
    retention: RetentionOut


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


class NoteIn(BaseModel):
    note: Text | None = Field(default=None, max_length=2000)


class SnoozeIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"minutes": 1440, "note": "call booked Monday"}]})

    until: BoundedInstant | None = Field(
        default=None, description="Snooze until this time (before 2200, UTC), or give `minutes`."
    )
    minutes: int | None = Field(default=None, ge=1, le=90 * 24 * 60)
    note: Text | None = Field(default=None, max_length=2000)


class FeedbackIn(BaseModel):
    verdict: Literal["useful", "false_alarm"]
    comment: Text | None = Field(default=None, max_length=2000)


class FeedbackOut(BaseModel):
    id: int
    alert_id: int
    verdict: Literal["useful", "false_alarm"]


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
    token: str
    account_id: str
    kam_id: str | None
    expires_at: datetime
    url: str = Field(description="The widget URL to embed in an iframe.")


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
    items: list[UnsentNotificationOut]


class NotificationRetryIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "failed"}, {"ids": [12, 13]}]})

    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] | None = Field(
        default=None, max_length=10_000, description="Only these notifications (default: every one given up on)."
    )
    status: UnsentStatus | None = Field(default=None, description="Only this status (default: both).")


class NotificationRetryOut(BaseModel):
    retried: list[int] = Field(description="Notifications queued again, due now.")
