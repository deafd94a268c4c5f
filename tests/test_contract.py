"""The event contract: every type accepted when valid, every kind of invalid rejected naming the field."""

from __future__ import annotations

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

VALID: dict[str, tuple[dict[str, Any], type[Any]]] = {
    "usage": ({"metric": "logins", "quantity": 3.5, "user_id": "u1"}, UsageEvent),
    "support_ticket": (
        {"ticket_id": "T1", "status": "escalated", "priority": "urgent", "category": "outage", "csat": 2},
        SupportTicketEvent,
    ),
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
    ),
    "contact_change": (
        {"contact_id": "C1", "change": "role_changed", "role": "champion", "previous_role": "user", "name": "Ann"},
        ContactChangeEvent,
    ),
    "engagement": ({"kind": "nps_survey", "outcome": "responded", "nps_score": 4}, EngagementEvent),
    "account": (
        {
            "name": "Acme",
            "owner_kam_id": "kam-1",
            "arr": "480000",
            "currency": "EUR",
            "tier": "strategic",
            "renewal_date": "2027-01-31",
            "growth_potential": "high",
            "strategic_reference": True,
            "parent_account_id": "acme-group",
        },
        AccountEvent,
    ),
    "kam": ({"name": "Léa", "email": "lea@example.com", "locale": "fr", "timezone": "Europe/Paris"}, KamEvent),
    "outcome": ({"outcome": "downgraded", "arr_before": "100", "arr_after": "60", "reason": "budget"}, OutcomeEvent),
}


def envelope(type_: str = "usage", data: Any = None, **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "crm",
        "type": f"kamwatch.{type_}.v1",
        "subject": "acme",
        "time": "2026-03-02T10:00:00+01:00",
        "data": VALID[type_][0] if data is None else data,
    }
    document.update(overrides)
    return {k: v for k, v in document.items() if v is not ...}


def rejection(document: Any) -> EventRejected:
    with pytest.raises(EventRejected) as caught:
        parse_event(orjson.dumps(document))
    return caught.value


@pytest.mark.parametrize("type_", sorted(VALID))
def test_every_type_parses_to_its_model(type_: str) -> None:
    event = parse_event(orjson.dumps(envelope(type_)))
    assert type(event) is VALID[type_][1]
    assert event.type == f"kamwatch.{type_}.v1"
    assert event.time.utcoffset() is not None


def test_usage_defaults() -> None:
    event = parse_event(orjson.dumps(envelope("usage", {})))
    assert isinstance(event, UsageEvent)
    assert (event.data.metric, event.data.quantity, event.data.user_id) == ("activity", Decimal(1), None)


def test_amount_as_string_or_number_is_an_exact_decimal() -> None:
    as_number = parse_event(orjson.dumps(envelope("payment")))
    as_string = parse_event(orjson.dumps(envelope("payment", {**VALID["payment"][0], "amount": "1250.50"})))
    assert isinstance(as_number, PaymentEvent)
    assert isinstance(as_string, PaymentEvent)
    assert as_number.data.amount == as_string.data.amount == Decimal("1250.5")


def test_unknown_attributes_are_kept() -> None:
    event = parse_event(orjson.dumps(envelope("usage", {"quantity": 1, "feature": "export"}, traceparent="00-ab")))
    assert event.model_extra == {"traceparent": "00-ab"}
    assert event.data.model_extra == {"feature": "export"}


# (case, document, expected field, words the reason must contain)
INVALID: list[tuple[str, Any, str | None, str]] = [
    # wrong type inside data
    ("quantity not a number", envelope("usage", {"quantity": "abc"}), "data.quantity", "decimal"),
    # missing required data attribute
    (
        "payment without invoice",
        envelope("payment", {"status": "paid", "amount": 1, "currency": "EUR", "due_date": "2026-04-01"}),
        "data.invoice_id",
        "missing",
    ),
    (
        "ticket without priority",
        envelope("support_ticket", {"ticket_id": "T", "status": "opened"}),
        "data.priority",
        "missing",
    ),
    (
        "account without owner",
        envelope("account", {"name": "A", "arr": 1, "currency": "EUR", "tier": "key"}),
        "data.owner_kam_id",
        "missing",
    ),
    # out of range
    ("negative quantity", envelope("usage", {"quantity": -1}), "data.quantity", "greater than or equal to 0"),
    (
        "csat above 5",
        envelope("support_ticket", {**VALID["support_ticket"][0], "csat": 6}),
        "data.csat",
        "less than or equal to 5",
    ),
    (
        "nps above 10",
        envelope("engagement", {"kind": "nps_survey", "outcome": "responded", "nps_score": 11}),
        "data.nps_score",
        "10",
    ),
    # enumerations
    (
        "unknown ticket status",
        envelope("support_ticket", {**VALID["support_ticket"][0], "status": "frozen"}),
        "data.status",
        "opened",
    ),
    (
        "unknown contact role",
        envelope("contact_change", {**VALID["contact_change"][0], "role": "ceo"}),
        "data.role",
        "champion",
    ),
    (
        "currency not ISO 4217",
        envelope("payment", {**VALID["payment"][0], "currency": "eur"}),
        "data.currency",
        "pattern",
    ),
    ("bad due date", envelope("payment", {**VALID["payment"][0], "due_date": "next week"}), "data.due_date", "date"),
    # envelope
    ("time without offset", envelope(time="2026-03-02T10:00:00"), "time", "timezone"),
    ("time missing", envelope(time=...), "time", "missing"),
    ("subject missing", envelope(subject=...), "subject", "missing"),
    ("empty id", envelope(id=""), "id", "at least 1"),
    ("specversion 0.3", envelope(specversion="0.3"), "specversion", "1.0"),
    ("unknown type", envelope(type="kamwatch.weather.v1"), "type", "unknown event type 'kamwatch.weather.v1'"),
    ("type missing", envelope(type=...), "type", "missing"),
    ("data not an object", envelope("usage", [1, 2]), "data", "should be an object"),
    # not an event at all
    ("a JSON array", [envelope()], None, "must be a JSON object"),
    ("a JSON number", 42, None, "must be a JSON object"),
]


@pytest.mark.parametrize(("document", "field", "words"), [case[1:] for case in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_events_are_rejected_naming_the_field(document: Any, field: str | None, words: str) -> None:
    rejected = rejection(document)
    assert rejected.field == field
    assert words.lower() in rejected.reason.lower()


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b'{"specversion": "1.0", "id": ', "invalid JSON"),
        (b"\xff\xfe not utf-8", "invalid JSON"),
        (b"", "empty message"),
        (b"   \n", "empty message"),
        (orjson.dumps(envelope("usage", {"user_id": "a\u0000b"})), "NUL"),
    ],
    ids=["truncated", "not utf-8", "empty", "blank", "NUL character"],
)
def test_unreadable_payloads_are_rejected(payload: bytes, words: str) -> None:
    outcome = parse_record(InboundRecord(payload))
    assert isinstance(outcome, EventRejected)
    assert words in outcome.reason


def test_json_schema_for_every_type() -> None:
    schemas = event_json_schemas()
    assert set(schemas) == set(EVENT_MODELS)
    for name, schema in schemas.items():
        assert schema["properties"]["type"]["const"] == name
        assert {"specversion", "id", "source", "type", "subject", "time"} <= set(schema["required"])
    assert schemas["kamwatch.payment.v1"]["$defs"]["PaymentData"]["required"] == [
        "invoice_id",
        "status",
        "amount",
        "currency",
        "due_date",
    ]
