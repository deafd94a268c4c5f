"""The one event-envelope parser: raw bytes in, a typed event or a precise rejection out."""

from __future__ import annotations

from typing import Any, NamedTuple

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


class InboundRecord(NamedTuple):
    """One raw input and where it came from (``kafka:topic/partition@offset``, ``file:path:line``)."""

    payload: bytes
    origin: str | None = None


def parse_event(payload: bytes | str) -> Event:
    """Validate one CloudEvents JSON document against the contract."""
    try:
        event = EVENT_ADAPTER.validate_json(payload)
    except ValidationError as error:
        raise _rejection(error.errors(include_url=False)[0]) from None
    # An ASCII document without escapes has as many bytes as characters in each key, which the models bound.
    if not payload.isascii() or _ESCAPE[type(payload)] in payload:
        field = oversized_key(event)
        if field is not None:
            raise EventRejected(f"must be at most {KEY_MAX_BYTES} bytes in UTF-8", field)
    return event


_ESCAPE: dict[type, Any] = {bytes: b"\\u", str: "\\u"}


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
