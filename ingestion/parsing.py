"""The one event-envelope parser: raw bytes in, a typed event or a precise rejection out.

Events come as structured CloudEvents JSON documents, or (Kafka) in the CloudEvents Kafka protocol binding's
binary mode: attributes in ``ce_*`` headers, ``data`` in the record's value, its media type in ``content-type``.
A binary-mode record is turned into the structured document it stands for, and that document is parsed (and
stored) like any other.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from schemas.events import EVENT_ADAPTER, EVENT_MODELS, KEY_MAX_BYTES, Event, oversized_key

_KNOWN_TYPES = ", ".join(EVENT_MODELS)


class EventRejected(ValueError):
    """An input that is not a valid event; ``field`` is the dotted path of the offending attribute."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.reason = reason
        self.field = field


Headers = Sequence[tuple[str, bytes]]


class InboundRecord(NamedTuple):
    """One raw input and where it came from (``kafka:topic/partition@offset``, ``file:path:line``); a Kafka
    record also brings its headers and key, as received."""

    payload: bytes
    origin: str | None = None
    headers: Headers = ()
    key: bytes | None = None


def parse_event(payload: bytes | str, *, binary_mode: bool = False) -> Event:
    """Validate one CloudEvents JSON document against the contract; ``binary_mode``: the document was built by
    ``binary_mode_document``, so invalid JSON can only be in its data."""
    try:
        event = EVENT_ADAPTER.validate_json(payload)
    except ValidationError as error:
        rejection = _rejection(error.errors(include_url=False)[0])
    else:
        # An ASCII document without escapes has as many bytes as characters in each key, which the models bound.
        if not payload.isascii() or _ESCAPE[type(payload)] in payload:
            field = oversized_key(event)
            if field is not None:
                raise EventRejected(f"must be at most {KEY_MAX_BYTES} bytes in UTF-8", field)
        return event
    if binary_mode and rejection.field is None and rejection.reason.startswith("invalid JSON"):
        rejection = EventRejected(rejection.reason, "data")  # the attributes are ours, written as valid JSON
    raise rejection


_ESCAPE: dict[type, Any] = {bytes: b"\\u", str: "\\u"}


def event_document(record: InboundRecord) -> bytes:
    """The structured CloudEvents JSON document a record stands for: its payload, or for a binary-mode Kafka
    record the envelope built from its ``ce_*`` headers with the payload as ``data``."""
    if not record.headers or not is_binary_mode(record.headers):
        return record.payload
    return binary_mode_document(record.headers, record.payload)


_CE_PREFIX = "ce_"
_CONTENT_TYPE = "content-type"
_JSON_MEDIA_TYPE = "application/json"


def is_binary_mode(headers: Headers) -> bool:
    """The Kafka binding's binary mode: a ``ce_specversion`` header, and no structured-mode content type
    (``application/cloudevents...``). Without either, the value is taken as a structured document."""
    binary = False
    for name, value in headers:
        lowered = name.lower()
        if lowered == "ce_specversion":
            binary = True
        elif lowered == _CONTENT_TYPE and value[:23].lower() == b"application/cloudevents":
            return False
    return binary


def binary_mode_document(headers: Headers, value: bytes) -> bytes:
    """The structured document of a binary-mode record: each ``ce_NAME`` header becomes attribute ``NAME``,
    ``content-type`` becomes ``datacontenttype`` (JSON only; a charset other than UTF-8 is transcoded) and the
    value, as received, becomes ``data`` (absent when the value is empty)."""
    attributes: dict[str, str] = {}
    content_type: str | None = None
    for name, raw in headers:
        lowered = name.lower()
        if lowered.startswith(_CE_PREFIX):
            attribute = lowered[len(_CE_PREFIX) :]
            if attribute in ("data", "data_base64"):
                raise EventRejected(f"header {name!r}: the data of a binary-mode event is the record's value", "data")
            attributes[attribute] = _header_text(name, raw, attribute)
        elif lowered == _CONTENT_TYPE:
            content_type = _header_text(name, raw, "datacontenttype").strip() or None  # empty: none given
    if content_type is not None:
        value = _json_data(content_type, value)
        attributes["datacontenttype"] = _JSON_MEDIA_TYPE
    envelope = orjson.dumps(attributes)
    if not value or value.isspace():
        return envelope
    return envelope[:-1] + b',"data":' + value + b"}"


def _header_text(name: str, raw: bytes, field: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise EventRejected(f"header {name!r} is not UTF-8 text", field) from None


def _json_data(content_type: str, value: bytes) -> bytes:
    """The value as UTF-8 JSON, as its content type says; any other media type is refused."""
    media_type, *parameters = (part.strip() for part in content_type.split(";"))
    if media_type.lower() != _JSON_MEDIA_TYPE:
        raise EventRejected(
            f"content-type {content_type!r} is not supported: the data of kamwatch events is {_JSON_MEDIA_TYPE}",
            "datacontenttype",
        )
    for parameter in parameters:
        key, _, charset = parameter.partition("=")
        if key.strip().lower() != "charset":
            continue
        charset = charset.strip().strip('"')
        try:
            if codecs.lookup(charset).name != "utf-8":
                value = value.decode(charset).encode("utf-8")
        except LookupError:
            raise EventRejected(f"unknown charset {charset!r} in content-type", "datacontenttype") from None
        except UnicodeDecodeError:
            raise EventRejected(f"the value is not {charset} text, as its content-type says", "data") from None
    return value


def _rejection(error: ErrorDetails) -> EventRejected:
    loc = list(error["loc"])
    if loc and loc[0] in EVENT_MODELS:
        loc = loc[1:]  # the union member's tag, not a field
    field = ".".join(str(part) for part in loc) or None
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    if kind == "json_invalid":
        return EventRejected(f"invalid JSON: {ctx.get('error', error['msg'])}")
    if kind == "union_tag_not_found":
        return EventRejected("missing required attribute", "type")
    if kind == "union_tag_invalid":
        return EventRejected(f"unknown event type {ctx.get('tag')!r} (expected one of {_KNOWN_TYPES})", "type")
    if kind in ("model_attributes_type", "dict_type", "model_type") and field is None:
        return EventRejected("an event must be a JSON object")
    if kind == "missing":
        return EventRejected("missing required attribute", field)
    return EventRejected(f"{error['msg']} (got {_preview(error.get('input'))})", field)


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
