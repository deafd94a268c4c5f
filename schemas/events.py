"""The event contract: CloudEvents 1.0 (structured mode) envelopes with a typed ``data`` per event type.

These models are the single source of truth for the contract: the ingestion parser, the JSON Schema
export and the AsyncAPI document are all derived from them.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime
from decimal import Decimal
from email.errors import HeaderParseError
from email.headerregistry import Address
from typing import Annotated, Any, Final, Literal, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, Strict, StringConstraints, TypeAdapter

from schemas.vocabulary import Locale, Tier

# Every instant and date the contract admits lies in this range, whatever the configured window (see
# ingestion.pipeline.TimeWindow): far enough from the calendar's ends that any arithmetic on it (windows of
# years, month ends, local days) stays representable, in Python and in PostgreSQL.
EARLIEST_INSTANT: Final = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_INSTANT: Final = datetime(2200, 1, 1, tzinfo=UTC)
KEY_MAX_BYTES: Final = 256
TEXT_MAX_CHARS: Final = 1000


# Keys go into composite btree indexes, whose rows PostgreSQL caps at about 2.7 kB: they are bounded in bytes.
# The models bound their characters; ``oversized_key`` checks the bytes after validation, and only for documents
# that may hold non-ASCII text (a validator per key cost a tenth of the parse, measured).
Key = Annotated[
    str,
    StringConstraints(min_length=1, max_length=KEY_MAX_BYTES),
    Field(description=f"An identifier: 1 to {KEY_MAX_BYTES} bytes in UTF-8."),
]
_DATA_KEYS: Final = (
    "metric",
    "user_id",
    "ticket_id",
    "invoice_id",
    "contact_id",
    "owner_kam_id",
    "parent_account_id",
    "slack_user_id",
    "manager_kam_id",
)


def oversized_key(event: _Envelope) -> str | None:
    """The dotted name of the first key longer than ``KEY_MAX_BYTES`` in UTF-8, if any."""
    for name in ("id", "source", "subject"):
        if len(getattr(event, name).encode("utf-8", "surrogatepass")) > KEY_MAX_BYTES:
            return name
    data = getattr(event, "data", None)
    for name in _DATA_KEYS:
        value = getattr(data, name, None)
        if isinstance(value, str) and len(value.encode("utf-8", "surrogatepass")) > KEY_MAX_BYTES:
            return f"data.{name}"
    return None


NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=TEXT_MAX_CHARS)]
Text = Annotated[str, StringConstraints(max_length=TEXT_MAX_CHARS)]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Money = Annotated[Decimal, Field(max_digits=20, decimal_places=4)]


def _storable_time(moment: datetime) -> datetime:
    """Events are stored by UTC day and month, and scored with windows of days to years around them: the time
    must lie in the contract's range. It is kept in UTC (the offset as sent stays in the raw event): every
    later use is by UTC day or instant, and converting a stdlib-UTC time costs a fifth of converting the
    parser's own offset type (measured)."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # before 0001-01-01 or after 9999-12-31 once in UTC
        utc = None
    if utc is None or not EARLIEST_INSTANT <= utc < LATEST_INSTANT:
        raise ValueError("must be between 1900-01-01 and 2199-12-31 (UTC)")
    return utc


def _storable_date(day: date) -> date:
    if not EARLIEST_INSTANT.date() <= day < LATEST_INSTANT.date():
        raise ValueError("must be between 1900-01-01 and 2199-12-31")
    return day


# Only an RFC 3339 string (strict: a number is not read as a Unix time); the range is declared in the JSON
# Schema as a pattern on the year, so that producers (and generators of test data) see it.
_IN_RANGE = r"^(19|20|21)[0-9]{2}-"
EventTime = Annotated[
    AwareDatetime,
    Strict(),
    AfterValidator(_storable_time),
    Field(json_schema_extra={"pattern": _IN_RANGE, "description": "RFC 3339, 1900 to 2199 (UTC)."}),
]
# The same range, for times given to the API (its bodies are validated from decoded JSON, not strictly).
BoundedInstant = Annotated[AwareDatetime, AfterValidator(_storable_time)]
EventDate = Annotated[
    date,
    Strict(),
    AfterValidator(_storable_date),
    Field(json_schema_extra={"pattern": _IN_RANGE, "description": "YYYY-MM-DD, 1900 to 2199."}),
]


@functools.lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    if not name or name != name.strip() or name.startswith(("/", ".")):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _iana_zone(name: str) -> str:
    """Local days (digests, budgets) are computed in it: it must be a time zone this system knows."""
    if not _known_zone(name):
        raise ValueError(f"unknown IANA time zone {name!r} (e.g. Europe/Paris, UTC)")
    return name


TimeZoneName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$"),
    AfterValidator(_iana_zone),
    Field(description="An IANA time zone this system knows, e.g. Europe/Paris."),
]


def _one_address(value: str) -> str:
    """Exactly one RFC 5322 addr-spec (``name@domain``): no display name, list, comment or line break."""
    try:
        address = Address(addr_spec=value)
    except (HeaderParseError, ValueError, IndexError, TypeError):
        address = None
    if address is None or address.addr_spec != value or not address.username or "." not in address.domain:
        raise ValueError("must be one email address (name@example.com)")
    return value


EmailAddress = Annotated[
    str,
    StringConstraints(min_length=3, max_length=254),
    AfterValidator(_one_address),
    Field(json_schema_extra={"format": "email"}),
]


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
    metric: Key = "activity"
    quantity: Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=24, decimal_places=6)] = Decimal(1)
    user_id: Key | None = None


class SupportTicketData(_Data):
    ticket_id: Key
    status: TicketStatus
    priority: TicketPriority
    category: NonEmpty | None = None
    csat: Annotated[int, Field(ge=1, le=5)] | None = None


class PaymentData(_Data):
    invoice_id: Key
    status: InvoiceStatus
    amount: Money
    currency: CurrencyCode
    due_date: EventDate
    paid_at: EventTime | None = None


class ContactChangeData(_Data):
    contact_id: Key
    change: ContactChange
    role: ContactRole
    previous_role: ContactRole | None = None
    name: Text | None = None
    email: EmailAddress | None = None
    title: Text | None = None


class EngagementData(_Data):
    kind: EngagementKind
    outcome: EngagementOutcome
    nps_score: Annotated[int, Field(ge=0, le=10)] | None = None


class AccountData(_Data):
    name: NonEmpty
    owner_kam_id: Key
    arr: Annotated[Money, Field(ge=0)]
    currency: CurrencyCode
    tier: Tier
    renewal_date: EventDate | None = None
    segment: Text | None = None
    industry: Text | None = None
    growth_potential: GrowthPotential | None = None
    strategic_reference: bool = False
    parent_account_id: Key | None = None


class KamData(_Data):
    name: NonEmpty
    email: EmailAddress
    slack_user_id: Key | None = None
    manager_kam_id: Key | None = None
    locale: Locale = "en"
    timezone: TimeZoneName = "UTC"


class OutcomeData(_Data):
    outcome: OutcomeKind
    arr_before: Money | None = None
    arr_after: Money | None = None
    reason: Text | None = None


class _Envelope(BaseModel):
    """CloudEvents 1.0 attributes shared by every event; unknown extension attributes are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: Key
    source: Key
    subject: Key = Field(description="The account id (for kamwatch.kam.v1, the KAM id).")
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
