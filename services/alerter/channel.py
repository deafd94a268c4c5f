"""What every channel sender is: something that delivers one rendered notification, or says why not."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from alerts.outbox import Rendered


class PermanentError(Exception):
    """Retrying will not help (nothing configured for the channel, an unreadable payload): fail at once."""


class Sender(Protocol):
    async def send(self, channel: str, to: str, rendered: Rendered, notification_ids: Sequence[int]) -> None: ...
