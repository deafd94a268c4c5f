"""The one wall clock. Only the service edge reads it; everything below takes an explicit ``as_of``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
