"""The event contract: every type accepted when valid, every kind of invalid rejected naming the field."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from ingestion.parsing import EventRejected, InboundRecord, parse_event
from ingestion.pipeline import parse_record
from schemas.events import (
    EVENT_MODELS,
    AccountEvent,
    ContactChangeEvent,
    EngagementEvent,
    KamEvent,
    OutcomeEvent,
    PaymentEvent,
    SupportTicketEvent,
    UsageEvent,
    event_json_schemas,
)

ENVELOPE_ATTRIBUTES = {"specversion", "id", "source", "type", "subject", "time"}

# type -> (data sent, model expected, attributes of the parsed data and their expected values)
VALID: dict[str, tuple[dict[str, Any], type[Any], dict[str, Any]]] = {
    # every attribute given; quantity as a JSON number with a fraction stays an exact decimal
    "usage": (
        {"metric": "logins", "quantity": 3.25, "user_id": "u1"},
        UsageEvent,
        {"metric": "logins", "quantity": Decimal("3.25"), "user_id": "u1"},
    ),
    # optional category and csat given
    "support_ticket": (
        {"ticket_id": "T1", "status": "escalated", "priority": "urgent", "category": "outage", "csat": 2},
        SupportTicketEvent,
        {"ticket_id": "T1", "status": "escalated", "priority": "urgent", "category": "outage", "csat": 2},
    ),
    # amount as a number, paid_at with its own offset
    "payment": (
        {
            "invoice_id": "I1",
            "status": "paid",
            "amount": 1250.5,
            "currency": "EUR",
            "due_date": "2026-04-01",
            "paid_at": "2026-04-09T10:00:00+02:00",
        },
        PaymentEvent,
        {
            "invoice_id": "I1",
            "status": "paid",
            "amount": Decimal("1250.5"),
            "currency": "EUR",
            "due_date": date(2026, 4, 1),
            "paid_at": datetime(2026, 4, 9, 8, tzinfo=UTC),
        },
    ),
    # a role change with its previous role and a name
    "contact_change": (
        {"contact_id": "C1", "change": "role_changed", "role": "champion", "previous_role": "user", "name": "Ann"},
        ContactChangeEvent,
        {"contact_id": "C1", "change": "role_changed", "role": "champion", "previous_role": "user", "name": "Ann"},
    ),
    # an NPS answer with its score
    "engagement": (
        {"kind": "nps_survey", "outcome": "responded", "nps_score": 4},
        EngagementEvent,
        {"kind": "nps_survey", "outcome": "responded", "nps_score": 4},
    ),
    # arr as a string, every optional attribute given
    "account": (
        {
            "name": "Acme",
            "owner_kam_id": "kam-1",
            "arr": "480000.10",
            "currency": "EUR",
            "tier": "strategic",
            "renewal_date": "2027-01-31",
            "segment": "enterprise",
            "industry": "retail",
            "growth_potential": "high",
            "strategic_reference": True,
            "parent_account_id": "acme-group",
        },
        AccountEvent,
        {
            "name": "Acme",
            "arr": Decimal("480000.10"),
            "renewal_date": date(2027, 1, 31),
            "tier": "strategic",
            "strategic_reference": True,
            "parent_account_id": "acme-group",
        },
    ),
    # non-ASCII name, French locale
    "kam": (
        {"name": "Léa", "email": "lea@example.com", "locale": "fr", "timezone": "Europe/Paris", "slack_user_id": "U1"},
        KamEvent,
        {"name": "Léa", "email": "lea@example.com", "locale": "fr", "timezone": "Europe/Paris", "slack_user_id": "U1"},
    ),
    # a downgrade with both ARR figures
    "outcome": (
        {"outcome": "downgraded", "arr_before": "100", "arr_after": 60.5, "reason": "budget"},
        OutcomeEvent,
        {"outcome": "downgraded", "arr_before": Decimal(100), "arr_after": Decimal("60.5"), "reason": "budget"},
    ),
}


def envelope(type_: str = "usage", data: Any = None, **overrides: Any) -> dict[str, Any]:
    """A valid event of ``type_``; an override of ``...`` removes that attribute."""
    document: dict[str, Any] = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "crm",
        "type": f"kamwatch.{type_}.v1",
        "subject": "acme",
        "time": "2026-03-02T10:00:00+01:00",
        "data": dict(VALID[type_][0]) if data is None else data,
    }
    document.update(overrides)
    return {k: v for k, v in document.items() if v is not ...}


def without(type_: str, name: str) -> dict[str, Any]:
    """The valid data of ``type_`` minus one attribute."""
    return {k: v for k, v in VALID[type_][0].items() if k != name}


def changed(type_: str, **values: Any) -> dict[str, Any]:
    return {**VALID[type_][0], **values}


def parse(document: Any) -> Any:
    return parse_event(orjson.dumps(document))


def rejection(payload: bytes) -> EventRejected:
    with pytest.raises(EventRejected) as caught:
        parse_event(payload)
    return caught.value


@pytest.mark.parametrize("type_", sorted(VALID))
def test_a_valid_event_of_every_type_parses_to_its_model(type_: str) -> None:
    _, model, expected = VALID[type_]
    event = parse(envelope(type_))

    assert type(event) is model
    assert (event.specversion, event.id, event.source, event.type, event.subject) == (
        "1.0",
        "e-1",
        "crm",
        f"kamwatch.{type_}.v1",
        "acme",
    )
    assert event.time == datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert event.time.tzinfo is UTC  # kept in UTC; the producer's offset stays in the raw event
    assert {name: getattr(event.data, name) for name in expected} == expected


# (case, event type, data sent, expected attributes of the parsed data)
DEFAULTS: list[tuple[str, str, Any, dict[str, Any]]] = [
    # an empty usage data: one unit of generic activity by nobody in particular
    ("usage, empty data", "usage", {}, {"metric": "activity", "quantity": Decimal(1), "user_id": None}),
    # only the user given
    ("usage, user only", "usage", {"user_id": "u9"}, {"metric": "activity", "quantity": Decimal(1), "user_id": "u9"}),
    # a KAM without locale or timezone
    (
        "kam",
        "kam",
        {"name": "K", "email": "k@example.com"},
        {"locale": "en", "timezone": "UTC", "manager_kam_id": None},
    ),
    # an account without the optional attributes
    (
        "account",
        "account",
        {"name": "A", "owner_kam_id": "k", "arr": 0, "currency": "USD", "tier": "key"},
        {"strategic_reference": False, "renewal_date": None, "parent_account_id": None, "arr": Decimal(0)},
    ),
    # an engagement without a score
    ("engagement", "engagement", {"kind": "meeting", "outcome": "attended"}, {"nps_score": None}),
]


@pytest.mark.parametrize(("type_", "data", "expected"), [c[1:] for c in DEFAULTS], ids=[c[0] for c in DEFAULTS])
def test_defaults_are_applied(type_: str, data: Any, expected: dict[str, Any]) -> None:
    event = parse(envelope(type_, data))
    assert {name: getattr(event.data, name) for name in expected} == expected
    assert event.datacontenttype is None


def test_usage_without_any_data_is_one_unit_of_activity() -> None:
    event = parse(envelope("usage", data=...))
    assert isinstance(event, UsageEvent)
    assert (event.data.metric, event.data.quantity, event.data.user_id) == ("activity", Decimal(1), None)


def test_money_is_an_exact_decimal_whether_sent_as_number_or_string() -> None:
    as_number = parse(envelope("payment", changed("payment", amount=0.1)))
    as_string = parse(envelope("payment", changed("payment", amount="0.10")))
    assert isinstance(as_number, PaymentEvent)
    assert isinstance(as_string, PaymentEvent)
    assert as_number.data.amount == as_string.data.amount == Decimal("0.1")
    assert as_string.data.amount.as_tuple().exponent == -2  # "0.10" keeps its scale


@pytest.mark.parametrize("type_", sorted(VALID))
def test_unknown_attributes_are_kept(type_: str) -> None:
    data = {**VALID[type_][0], "feature": "export", "nested": {"a": [1, 2]}}
    event = parse(envelope(type_, data, traceparent="00-ab-01", partitionkey="acme"))
    assert event.model_extra == {"traceparent": "00-ab-01", "partitionkey": "acme"}
    assert event.data.model_extra == {"feature": "export", "nested": {"a": [1, 2]}}


def test_times_at_the_edges_of_the_supported_range_are_accepted() -> None:
    # The contract's range is 1900-01-01 to 2199-12-31 (UTC), whatever the offset the time is written with.
    assert parse(envelope(time="1900-01-01T01:00:00+01:00")).time == datetime(1900, 1, 1, tzinfo=UTC)
    assert parse(envelope(time="2199-12-31T18:59:59-05:00")).time == datetime(2199, 12, 31, 23, 59, 59, tzinfo=UTC)


# (case, document, field expected, words the reason must contain)
INVALID: list[tuple[str, Any, str | None, str]] = [
    # --- wrong type ---
    # a quantity that is not a number
    ("quantity 'abc'", envelope("usage", {"quantity": "abc"}), "data.quantity", "decimal"),
    # a score that is not an integer
    ("csat 'high'", envelope("support_ticket", changed("support_ticket", csat="high")), "data.csat", "integer"),
    # a boolean given as a word
    (
        "strategic_reference 'sure'",
        envelope("account", changed("account", strategic_reference="sure")),
        "data.strategic_reference",
        "boolean",
    ),
    # the subject must be a string
    ("subject 42", envelope(subject=42), "subject", "string"),
    # data must be an object
    ("data a list", envelope("usage", [1, 2]), "data", "object"),
    # --- missing required attribute ---
    # a payment without its invoice id
    ("payment without invoice_id", envelope("payment", without("payment", "invoice_id")), "data.invoice_id", "missing"),
    # a ticket without priority
    (
        "ticket without priority",
        envelope("support_ticket", without("support_ticket", "priority")),
        "data.priority",
        "missing",
    ),
    # a contact change without role
    ("contact without role", envelope("contact_change", without("contact_change", "role")), "data.role", "missing"),
    # an engagement without kind
    ("engagement without kind", envelope("engagement", without("engagement", "kind")), "data.kind", "missing"),
    # an account without owner
    ("account without owner", envelope("account", without("account", "owner_kam_id")), "data.owner_kam_id", "missing"),
    # a KAM without email
    ("kam without email", envelope("kam", without("kam", "email")), "data.email", "missing"),
    # an outcome without its kind
    ("outcome without outcome", envelope("outcome", without("outcome", "outcome")), "data.outcome", "missing"),
    # a payment without any data (usage alone has defaults for all of it)
    ("payment without data", envelope("payment", data=...), "data", "missing"),
    # every event needs its id (the idempotency key, with source)
    ("id missing", envelope(id=...), "id", "missing"),
    # and its source
    ("source missing", envelope(source=...), "source", "missing"),
    # and the account (or KAM) it is about
    ("subject missing", envelope(subject=...), "subject", "missing"),
    # and when it happened
    ("time missing", envelope(time=...), "time", "missing"),
    # a CloudEvent must say its version
    ("specversion missing", envelope(specversion=...), "specversion", "missing"),
    # --- out of range ---
    # usage cannot be negative
    ("negative quantity", envelope("usage", {"quantity": -1}), "data.quantity", "greater than or equal to 0"),
    # CSAT is 1 to 5
    ("csat 6", envelope("support_ticket", changed("support_ticket", csat=6)), "data.csat", "less than or equal to 5"),
    # below 1 too
    (
        "csat 0",
        envelope("support_ticket", changed("support_ticket", csat=0)),
        "data.csat",
        "greater than or equal to 1",
    ),
    # NPS is 0 to 10
    (
        "nps 11",
        envelope("engagement", changed("engagement", nps_score=11)),
        "data.nps_score",
        "less than or equal to 10",
    ),
    # below 0 too
    ("nps -1", envelope("engagement", changed("engagement", nps_score=-1)), "data.nps_score", "greater than or equal"),
    # a negative ARR
    ("negative arr", envelope("account", changed("account", arr="-1")), "data.arr", "greater than or equal to 0"),
    # more decimals than money has
    ("amount 0.00001", envelope("payment", changed("payment", amount="0.00001")), "data.amount", "4 decimal places"),
    # an empty id
    ("empty id", envelope(id=""), "id", "at least 1 character"),
    # --- bad enumeration ---
    # a ticket status outside the list (the reason lists the allowed ones)
    ("ticket status foo", envelope("support_ticket", changed("support_ticket", status="foo")), "data.status", "opened"),
    # an invoice status outside the list
    ("invoice status foo", envelope("payment", changed("payment", status="foo")), "data.status", "issued"),
    # a contact role outside the list
    ("contact role ceo", envelope("contact_change", changed("contact_change", role="ceo")), "data.role", "champion"),
    # an engagement kind outside the list
    ("engagement kind call", envelope("engagement", changed("engagement", kind="call")), "data.kind", "meeting"),
    # an account tier outside the list
    ("tier gold", envelope("account", changed("account", tier="gold")), "data.tier", "strategic"),
    # a locale the alerts are not written in
    ("locale de", envelope("kam", changed("kam", locale="de")), "data.locale", "'en'"),
    # an outcome outside the list
    ("outcome lost", envelope("outcome", changed("outcome", outcome="lost")), "data.outcome", "churned"),
    # structured mode: the data is JSON
    ("datacontenttype xml", envelope(datacontenttype="text/xml"), "datacontenttype", "application/json"),
    # --- currency must be an ISO 4217 code ---
    # lower case
    ("currency 'eur'", envelope("payment", changed("payment", currency="eur")), "data.currency", "pattern"),
    # four letters
    ("currency 'EURO'", envelope("account", changed("account", currency="EURO")), "data.currency", "pattern"),
    # --- time ---
    # no offset: ambiguous
    ("naive time", envelope(time="2026-03-02T10:00:00"), "time", "timezone"),
    # a date alone
    ("date only", envelope(time="2026-03-02"), "time", "datetime"),
    # not a time at all
    ("time 'yesterday'", envelope(time="yesterday"), "time", "datetime"),
    # an impossible date
    ("month 13", envelope(time="2026-13-02T10:00:00Z"), "time", "month"),
    # an hour before year 1 begins in UTC: not representable (it used to crash the whole batch)
    ("time before year 1 in UTC", envelope(time="0001-01-01T00:00:00+01:00"), "time", "between"),
    # year 1 itself: PostgreSQL would have been sent -infinity
    ("time in year 1", envelope(time="0001-01-01T00:00:00Z"), "time", "between"),
    # an hour before 1900 in UTC
    ("time just before 1900", envelope(time="1900-01-01T00:00:00+01:00"), "time", "between"),
    # year 9999: its month partition would end in year 10000
    ("time in year 9999", envelope(time="9999-06-01T00:00:00Z"), "time", "between"),
    # 2200 in UTC, though 2199 where it was written
    ("time in 2200 in UTC", envelope(time="2199-12-31T23:00:00-05:00"), "time", "between"),
    # only an RFC 3339 string: a number is not read as a Unix time
    ("time as a number", envelope(time=1767225600), "time", "datetime"),
    # dates inside data are bounded too: a payment in year 9999 halted every rescoring once
    (
        "paid_at in year 9999",
        envelope("payment", changed("payment", paid_at="9999-12-31T23:59:59-05:00")),
        "data.paid_at",
        "between",
    ),
    ("due_date in year 1", envelope("payment", changed("payment", due_date="0001-01-01")), "data.due_date", "between"),
    ("due_date as a number", envelope("payment", changed("payment", due_date=20260401)), "data.due_date", "date"),
    (
        "renewal_date in 9999",
        envelope("account", changed("account", renewal_date="9999-12-31")),
        "data.renewal_date",
        "between",
    ),
    # --- time zones: IANA names only, exactly ---
    ("timezone with a space", envelope("kam", changed("kam", timezone="Europe/Paris ")), "data.timezone", "pattern"),
    ("timezone on Mars", envelope("kam", changed("kam", timezone="Mars/Olympus")), "data.timezone", "IANA"),
    ("timezone empty", envelope("kam", changed("kam", timezone="")), "data.timezone", "at least 1"),
    ("timezone a path", envelope("kam", changed("kam", timezone="../../etc/passwd")), "data.timezone", "pattern"),
    # --- one email address per field ---
    ("two emails", envelope("kam", changed("kam", email="a@example.com, b@example.com")), "data.email", "one email"),
    (
        "email with CRLF",
        envelope("kam", changed("kam", email="a@example.com\r\nBcc: x@example.com")),
        "data.email",
        "one",
    ),
    ("email with a name", envelope("kam", changed("kam", email="Lea <lea@example.com>")), "data.email", "one email"),
    ("email without a domain", envelope("kam", changed("kam", email="lea")), "data.email", "one email"),
    (
        "contact email list",
        envelope("contact_change", changed("contact_change", email="a@example.com;b@example.com")),
        "data.email",
        "one email",
    ),
    # --- keys are bounded in bytes (index rows), not only in characters ---
    ("id of 257 bytes", envelope(id="x" * 257), "id", "256"),
    ("source of 65 four-byte characters", envelope(source="\U0001f600" * 65), "source", "256 bytes"),
    ("subject of 300 characters", envelope(subject="a" * 300), "subject", "256"),
    (
        "ticket id of 300 bytes",
        envelope("support_ticket", changed("support_ticket", ticket_id="é" * 150)),
        "data.ticket_id",
        "bytes",
    ),
    # --- specversion ---
    # an older CloudEvents version
    ("specversion 0.3", envelope(specversion="0.3"), "specversion", "'1.0'"),
    # the version as a number rather than a string
    ("specversion as a number", envelope(specversion=1.0), "specversion", "'1.0'"),
    # --- type ---
    # a type we do not know: the reason names it and lists the known ones
    ("unknown type", envelope(type="kamwatch.weather.v1"), "type", "unknown event type 'kamwatch.weather.v1'"),
    # types are case-sensitive
    ("type in upper case", envelope(type="KAMWATCH.USAGE.V1"), "type", "unknown event type 'KAMWATCH.USAGE.V1'"),
    # no type at all
    ("type missing", envelope(type=...), "type", "missing"),
    # --- not an object ---
    # a batch in one message
    ("a JSON array", [envelope()], None, "must be a JSON object"),
    # a bare number
    ("a JSON number", 42, None, "must be a JSON object"),
    # a bare string
    ("a JSON string", "event", None, "must be a JSON object"),
    # null
    ("JSON null", None, None, "must be a JSON object"),
]


@pytest.mark.parametrize(("document", "field", "words"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_events_are_rejected_naming_the_field(document: Any, field: str | None, words: str) -> None:
    rejected = rejection(orjson.dumps(document))
    assert rejected.field == field
    assert words.lower() in rejected.reason.lower()
    if field is not None:
        assert str(rejected).startswith(f"{field}: ")  # the message names the field


# (case, payload)
INVALID_JSON: list[tuple[str, bytes]] = [
    # cut off in the middle
    ("truncated", b'{"specversion": "1.0", "id": '),
    # not UTF-8 at all
    ("not UTF-8", b"\xff\xfe{}"),
    # Python-style quotes
    ("single quotes", b"{'specversion': '1.0'}"),
    # a valid object followed by garbage
    ("trailing characters", orjson.dumps(envelope()) + b" x"),
    # two events on one line
    ("two objects", orjson.dumps(envelope()) + orjson.dumps(envelope())),
    # nothing at all
    ("empty", b""),
    # a lone surrogate cannot be stored as text
    ("lone surrogate", orjson.dumps(envelope()).replace(b'"acme"', b'"\\ud800"')),
]


@pytest.mark.parametrize("payload", [c[1] for c in INVALID_JSON], ids=[c[0] for c in INVALID_JSON])
def test_invalid_json_is_rejected(payload: bytes) -> None:
    rejected = rejection(payload)
    assert rejected.reason.startswith("invalid JSON")
    assert rejected.field is None


# (case, payload, field expected, words the reason must contain): what the pipeline refuses besides the contract
UNSTORABLE: list[tuple[str, bytes, str | None, str]] = [
    # nothing to parse
    ("empty", b"", None, "empty message"),
    ("blank", b"  \r\n", None, "empty message"),
    # PostgreSQL text and jsonb cannot hold NUL, wherever it is
    ("NUL in data", orjson.dumps(envelope("usage", {"user_id": "a\u0000b"})), "data.user_id", "NUL"),
    ("NUL in subject", orjson.dumps(envelope(subject="ac\u0000me")), "subject", "NUL"),
    ("NUL in an extension", orjson.dumps(envelope(comment=["ok", "\u0000"])), "comment.1", "NUL"),
    # in a key: the field is named with the NUL escaped (a dead letter's field must be storable too)
    ("NUL in a key", orjson.dumps(envelope("usage", {"a\u0000": 1})), "data.a\\u0000", "NUL"),
    # NUL in an otherwise invalid event: refused for the NUL first
    ("NUL and invalid", orjson.dumps(envelope("payment", {"invoice_id": "\u0000"})), "data.invoice_id", "NUL"),
    # NaN and Infinity are not JSON, though some parsers take them; PostgreSQL refuses them
    ("NaN in an extension", orjson.dumps(envelope(x=0)).replace(b'"x":0', b'"x":NaN'), "x", "NaN"),
    (
        "Infinity in data",
        orjson.dumps(envelope("usage", {"q": 0})).replace(b'"q":0', b'"q":[-Infinity]'),
        "data.q.0",
        "NaN",
    ),
    # numbers Python reads back as inf or 0, or integers beyond 64 bits (orjson cannot write them back)
    ("1e400", orjson.dumps(envelope(x=0)).replace(b'"x":0', b'"x":1e400'), "x", "out of range"),
    ("1e4301", orjson.dumps(envelope(x=0)).replace(b'"x":0', b'"x":{"y":1e4301}'), "x.y", "out of range"),
    ("2**64", orjson.dumps(envelope(x=0)).replace(b'"x":0', b'"x":18446744073709551616'), "x", "out of range"),
    # a number PostgreSQL numeric (so jsonb) cannot hold, in an attribute the contract does not know
    ("huge exponent", orjson.dumps(envelope()).replace(b'"id"', b'"big":1e200000,"id"'), "big", "number"),
    ("tiny exponent", orjson.dumps(envelope("usage", {"x": [0]})).replace(b"[0]", b"[1e-16384]"), "data.x.0", "number"),
    ("exponent with a sign", orjson.dumps(envelope(big=0)).replace(b'"big":0', b'"big":2E+131072'), "big", "number"),
    # too many digits after the point, or before it, without any exponent
    ("long fraction", orjson.dumps(envelope(f=0)).replace(b'"f":0', b'"f":0.' + b"1" * 16384), "f", "number"),
    (
        "long integer",
        orjson.dumps(envelope("usage", {"n": 0})).replace(b'"n":0', b'"n":' + b"7" * 131073),
        "data.n",
        "number",
    ),
]


@pytest.mark.parametrize(("payload", "field", "words"), [c[1:] for c in UNSTORABLE], ids=[c[0] for c in UNSTORABLE])
def test_payloads_that_cannot_be_stored_are_rejected(payload: bytes, field: str | None, words: str) -> None:
    outcome = parse_record(InboundRecord(payload))
    assert isinstance(outcome, EventRejected)
    assert outcome.field == field
    assert words in outcome.reason


def test_storable_extremes_are_accepted() -> None:
    # The largest and smallest finite doubles, the extreme 64-bit integers, an escaped surrogate pair (an emoji)
    # and strings merely mentioning an exponent, NaN or a NUL escape.
    extremes = (
        b'"x":[1.7976931348623157e308,2.2250738585072014e-308,-9223372036854775808,9223372036854775807],'
        b'"e":"\\ud83d\\ude00","n"'
    )
    payload = orjson.dumps(envelope(id="1e99999", note="\\u0000 NaN")).replace(b'"note"', extremes)
    outcome = parse_record(InboundRecord(payload))
    assert isinstance(outcome, UsageEvent)
    assert outcome.id == "1e99999"
    assert outcome.model_extra == {
        "x": [1.7976931348623157e308, 2.2250738585072014e-308, -(2**63), 2**63 - 1],
        "e": "\U0001f600",
        "n": "\\u0000 NaN",
    }


def test_there_is_a_json_schema_per_type_with_its_required_attributes() -> None:
    schemas = event_json_schemas()
    assert set(schemas) == set(EVENT_MODELS) == {f"kamwatch.{t}.v1" for t in VALID}

    required_data = {
        "kamwatch.usage.v1": set(),
        "kamwatch.support_ticket.v1": {"ticket_id", "status", "priority"},
        "kamwatch.payment.v1": {"invoice_id", "status", "amount", "currency", "due_date"},
        "kamwatch.contact_change.v1": {"contact_id", "change", "role"},
        "kamwatch.engagement.v1": {"kind", "outcome"},
        "kamwatch.account.v1": {"name", "owner_kam_id", "arr", "currency", "tier"},
        "kamwatch.kam.v1": {"name", "email"},
        "kamwatch.outcome.v1": {"outcome"},
    }
    for name, schema in schemas.items():
        assert schema["properties"]["type"]["const"] == name
        assert schema["properties"]["specversion"]["const"] == "1.0"
        assert schema["properties"]["time"]["format"] == "date-time"
        # usage alone may omit data (it defaults to one unit of activity)
        assert set(schema["required"]) == ENVELOPE_ATTRIBUTES | ({"data"} if required_data[name] else set())
        data_ref = schema["properties"]["data"]["$ref"].removeprefix("#/$defs/")
        data_schema = schema["$defs"][data_ref]
        assert set(data_schema.get("required", [])) == required_data[name]
        assert data_schema["additionalProperties"] is True  # unknown attributes are allowed
    ticket = schemas["kamwatch.support_ticket.v1"]["$defs"]["SupportTicketData"]["properties"]
    assert set(ticket["status"]["enum"]) == {"opened", "updated", "escalated", "reopened", "resolved", "closed"}
