"""Builders of contract-valid events for tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import orjson

from ingestion.parsing import InboundRecord

_ids = itertools.count(1)


def event(
    type_: str,
    subject: str,
    time: datetime | str,
    data: dict[str, Any] | None = None,
    *,
    id: str | None = None,
    source: str = "tests",
    **extra: Any,
) -> dict[str, Any]:
    moment = time if isinstance(time, str) else time.isoformat()
    document: dict[str, Any] = {
        "specversion": "1.0",
        "id": id or f"evt-{next(_ids)}",
        "source": source,
        "type": f"kamwatch.{type_}.v1",
        "subject": subject,
        "time": moment,
        "data": data if data is not None else {},
    }
    document.update(extra)
    return document


def encode(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document)


def records(*documents: dict[str, Any] | bytes) -> list[InboundRecord]:
    return [InboundRecord(d if isinstance(d, bytes) else encode(d)) for d in documents]


def at(day: int, hour: int = 12, month: int = 3, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)
