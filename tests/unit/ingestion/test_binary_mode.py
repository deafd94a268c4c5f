"""CloudEvents over Kafka in both modes of the protocol binding, as the official SDK produces them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from ingestion.parsing import EventRejected, InboundRecord, event_document, is_binary_mode
from ingestion.pipeline import parse_record
from schemas.events import PaymentEvent, UsageEvent

PAYMENT = {"invoice_id": "I-7", "status": "failed", "amount": "1250.50", "currency": "EUR", "due_date": "2026-04-01"}


def cloud_event(data: dict[str, Any] | None = None, **attributes: Any) -> CloudEvent:
    return CloudEvent(
        {
            "id": "evt-1",
            "source": "billing",
            "type": "kamwatch.payment.v1",
            "subject": "acme",
            "time": datetime(2026, 3, 2, 12, tzinfo=UTC),
            "datacontenttype": "application/json",
            **attributes,
        },
        data if data is not None else PAYMENT,
    )


def inbound(message: KafkaMessage) -> InboundRecord:
    key = message.key.encode() if isinstance(message.key, str) else message.key
    return InboundRecord(message.value, "kafka:kamwatch.payments/0@1", tuple(message.headers.items()), key)


def binary(value: bytes, **headers: str) -> InboundRecord:
    return InboundRecord(value, None, tuple((name, text.encode()) for name, text in headers.items()))


ATTRIBUTES = {
    "ce_specversion": "1.0",
    "ce_id": "evt-9",
    "ce_source": "billing",
    "ce_type": "kamwatch.usage.v1",
    "ce_subject": "acme",
    "ce_time": "2026-03-02T12:00:00Z",
}


def test_binary_mode_from_the_sdk_is_the_same_event_as_structured_mode() -> None:
    event = cloud_event(partitionkey="acme")
    binary_message = to_binary(event, JSONFormat())
    structured_message = to_structured(event, JSONFormat())
    assert any(name.startswith("ce_") for name in binary_message.headers)  # the SDK's binary mode indeed

    from_binary = parse_record(inbound(binary_message))
    from_structured = parse_record(inbound(structured_message))

    assert isinstance(from_binary, PaymentEvent)
    assert from_binary == from_structured
    assert from_binary.data.amount == from_structured.data.amount
    assert from_binary.model_extra == {"partitionkey": "acme"}


def test_the_stored_document_keeps_the_data_bytes_as_sent() -> None:
    value = b'{"invoice_id":"I-7","status":"issued","amount":10.50,"currency":"EUR","due_date":"2026-04-01"}'
    record = binary(value, **{**ATTRIBUTES, "ce_type": "kamwatch.payment.v1"})
    document = event_document(record)
    assert document.endswith(b',"data":' + value + b"}")  # 10.50 stays 10.50
    assert orjson.loads(document)["type"] == "kamwatch.payment.v1"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"ce_specversion": "1.0"}, True),
        ({"CE_SPECVERSION": "1.0"}, True),  # header names are matched without case
        ({"ce_specversion": "1.0", "content-type": "application/cloudevents+json"}, False),  # structured mode
        ({"content-type": "application/json"}, False),  # a structured document sent with a plain JSON type
        ({"ce_type": "kamwatch.usage.v1"}, False),  # attributes without a spec version: not an event binding
        ({}, False),
    ],
)
def test_binary_mode_is_told_by_its_spec_version_header(headers: dict[str, str], expected: bool) -> None:
    assert is_binary_mode([(name, value.encode()) for name, value in headers.items()]) is expected


def test_a_structured_record_with_headers_is_parsed_from_its_value() -> None:
    document = orjson.dumps({**{k[3:]: v for k, v in ATTRIBUTES.items()}, "data": {"quantity": 2}})
    record = InboundRecord(document, None, (("content-type", b"application/json"), ("correlation_id", b"x")))
    event = parse_record(record)
    assert isinstance(event, UsageEvent)
    assert event_document(record) is document


@pytest.mark.parametrize(
    ("value", "content_type", "quantity"),
    [
        (b'{"quantity": 3}', "application/json", 3),
        (b'{"quantity": 3}', "application/json; charset=utf-8", 3),
        ('{"quantity": 4, "metric": "caf\u00e9"}'.encode("utf-16"), "application/json; charset=UTF-16", 4),
        ('{"quantity": 5, "metric": "\u00e9t\u00e9"}'.encode("latin-1"), 'Application/JSON;charset="latin-1"', 5),
    ],
)
def test_the_content_type_is_honoured(value: bytes, content_type: str, quantity: int) -> None:
    event = parse_record(binary(value, **ATTRIBUTES, **{"content-type": content_type}))
    assert isinstance(event, UsageEvent)
    assert event.data.quantity == quantity
    assert event.datacontenttype == "application/json"


def test_without_data_a_usage_event_takes_its_defaults() -> None:
    event = parse_record(binary(b"", **ATTRIBUTES))
    assert isinstance(event, UsageEvent)
    assert event.data.quantity == 1


@pytest.mark.parametrize(
    ("record", "field", "words"),
    [
        (binary(b'{"quantity": 3}', **{**ATTRIBUTES, "ce_type": ""}), "type", "unknown event type"),
        (binary(b'{"quantity": 3}', **{k: v for k, v in ATTRIBUTES.items() if k != "ce_type"}), "type", "missing"),
        (binary(b'{"quantity": 3}', **{k: v for k, v in ATTRIBUTES.items() if k != "ce_time"}), "time", "missing"),
        (binary(b'{"quantity": ', **ATTRIBUTES), "data", "invalid JSON"),
        (binary(b'"just text"', **ATTRIBUTES), "data", "object"),
        (binary(b"<usage/>", **ATTRIBUTES, **{"content-type": "application/xml"}), "datacontenttype", "xml"),
        (binary(b"{}", **ATTRIBUTES, **{"content-type": "application/json; charset=klingon"}), "datacontenttype", ""),
        (binary(b"\xff\xfe{}", **ATTRIBUTES, **{"content-type": "application/json; charset=utf-8"}), "data", ""),
        (binary(b"{}", **{**ATTRIBUTES, "ce_data": "{}"}), "data", "value"),
        (
            InboundRecord(b"{}", None, (*((k, v.encode()) for k, v in ATTRIBUTES.items()), ("ce_subject", b"\xff"))),
            "subject",
            "UTF-8",
        ),
        (binary(b"{}", **{**ATTRIBUTES, "ce_subject": "a\u0000b"}), "subject", "NUL"),
    ],
    ids=[
        "empty type",
        "no type",
        "no time",
        "bad JSON",
        "not an object",
        "not JSON",
        "unknown charset",
        "bad UTF-8",
        "data header",
        "binary header",
        "NUL",
    ],
)
def test_a_bad_binary_mode_record_is_rejected_with_its_field(record: InboundRecord, field: str, words: str) -> None:
    outcome = parse_record(record)
    assert isinstance(outcome, EventRejected)
    assert outcome.field == field
    assert words in outcome.reason
