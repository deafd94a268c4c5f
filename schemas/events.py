"""The event contract: CloudEvents 1.0 (structured mode) envelopes with a typed ``data`` per event type.

These models are the single source of truth for the contract: the ingestion parser, the JSON Schema
export and the AsyncAPI document are all derived from them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from schemas.vocabulary import Locale, Tier

NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=512)]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Money = Annotated[Decimal, Field(max_digits=20, decimal_places=4)]


def _storable_time(moment: datetime) -> datetime:
    """Events are stored by UTC day and month: that UTC time, and its month's end, must exist. The time is
    kept in UTC (the offset as sent stays in the raw event): every later use is by UTC day or instant, and
    converting a stdlib-UTC time costs a fifth of converting the parser's own offset type (measured)."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # before 0001-01-01 or after 9999-12-31 once in UTC
        utc = None
    if utc is None or utc.year > 9998:
        raise ValueError("time must be between 0001-01-01 and 9998-12-31 (UTC)")
    return utc


EventTime = Annotated[AwareDatetime, AfterValidator(_storable_time)]


TicketStatus = Literal["opened", "updated", "escalated", "reopened", "resolved", "closed"]
TicketPriority = Literal["low", "normal", "high", "urgent"]
InvoiceStatus = Literal["issued", "paid", "failed", "disputed", "refunded", "written_off"]
ContactChange = Literal["added", "updated", "role_changed", "removed", "left_company"]
ContactRole = Literal[
    "executive_sponsor",
    "champion",
    "decision_maker",
    "technical_evaluator",
    "influencer",
    "user",
    "detractor",
]
EngagementKind = Literal["meeting", "business_review", "email", "event", "training", "nps_survey"]
EngagementOutcome = Literal["attended", "declined", "no_show", "cancelled", "replied", "no_reply", "responded"]
GrowthPotential = Literal["low", "medium", "high"]
OutcomeKind = Literal["renewed", "expanded", "downgraded", "churned"]


class _Data(BaseModel):
    # Producers may add attributes we do not know yet: keep them (the raw event is stored whole).
    model_config = ConfigDict(extra="allow", frozen=True)


class UsageData(_Data):
    metric: NonEmpty = "activity"
    quantity: Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=24, decimal_places=6)] = Decimal(1)
    user_id: NonEmpty | None = None


class SupportTicketData(_Data):
    ticket_id: NonEmpty
    status: TicketStatus
    priority: TicketPriority
    category: NonEmpty | None = None
    csat: Annotated[int, Field(ge=1, le=5)] | None = None


class PaymentData(_Data):
    invoice_id: NonEmpty
    status: InvoiceStatus
    amount: Money
    currency: CurrencyCode
    due_date: date
    paid_at: AwareDatetime | None = None


class ContactChangeData(_Data):
    contact_id: NonEmpty
    change: ContactChange
    role: ContactRole
    previous_role: ContactRole | None = None
    name: str | None = None
    email: str | None = None
    title: str | None = None


class EngagementData(_Data):
    kind: EngagementKind
    outcome: EngagementOutcome
    nps_score: Annotated[int, Field(ge=0, le=10)] | None = None


class AccountData(_Data):
    name: NonEmpty
    owner_kam_id: NonEmpty
    arr: Annotated[Money, Field(ge=0)]
    currency: CurrencyCode
    tier: Tier
    renewal_date: date | None = None
    segment: str | None = None
    industry: str | None = None
    growth_potential: GrowthPotential | None = None
    strategic_reference: bool = False
    parent_account_id: NonEmpty | None = None


class KamData(_Data):
    name: NonEmpty
    email: NonEmpty
    slack_user_id: NonEmpty | None = None
    manager_kam_id: NonEmpty | None = None
    locale: Locale = "en"
    timezone: str = "UTC"


class OutcomeData(_Data):
    outcome: OutcomeKind
    arr_before: Money | None = None
    arr_after: Money | None = None
    reason: str | None = None


class _Envelope(BaseModel):
    """CloudEvents 1.0 attributes shared by every event; unknown extension attributes are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: NonEmpty
    source: NonEmpty
    subject: NonEmpty = Field(description="The account id (for kamwatch.kam.v1, the KAM id).")
    time: EventTime = Field(description="When it happened, RFC 3339 with offset.")
    datacontenttype: Literal["application/json"] | None = None


class UsageEvent(_Envelope):
    type: Literal["kamwatch.usage.v1"]
    data: UsageData = UsageData()


class SupportTicketEvent(_Envelope):
    type: Literal["kamwatch.support_ticket.v1"]
    data: SupportTicketData


class PaymentEvent(_Envelope):
    type: Literal["kamwatch.payment.v1"]
    data: PaymentData


class ContactChangeEvent(_Envelope):
    type: Literal["kamwatch.contact_change.v1"]
    data: ContactChangeData


class EngagementEvent(_Envelope):
    type: Literal["kamwatch.engagement.v1"]
    data: EngagementData


class AccountEvent(_Envelope):
    type: Literal["kamwatch.account.v1"]
    data: AccountData


class KamEvent(_Envelope):
    type: Literal["kamwatch.kam.v1"]
    data: KamData


class OutcomeEvent(_Envelope):
    type: Literal["kamwatch.outcome.v1"]
    data: OutcomeData


Event: TypeAlias = Annotated[
    UsageEvent
    | SupportTicketEvent
    | PaymentEvent
    | ContactChangeEvent
    | EngagementEvent
    | AccountEvent
    | KamEvent
    | OutcomeEvent,
    Field(discriminator="type"),
]

EVENT_MODELS: Final[dict[str, type[_Envelope]]] = {
    "kamwatch.usage.v1": UsageEvent,
    "kamwatch.support_ticket.v1": SupportTicketEvent,
    "kamwatch.payment.v1": PaymentEvent,
    "kamwatch.contact_change.v1": ContactChangeEvent,
    "kamwatch.engagement.v1": EngagementEvent,
    "kamwatch.account.v1": AccountEvent,
    "kamwatch.kam.v1": KamEvent,
    "kamwatch.outcome.v1": OutcomeEvent,
}

EVENT_ADAPTER: Final[TypeAdapter[Event]] = TypeAdapter(Event)


def event_json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema (draft 2020-12) of each event type, keyed by the CloudEvents ``type``."""
    return {name: model.model_json_schema() for name, model in EVENT_MODELS.items()}
