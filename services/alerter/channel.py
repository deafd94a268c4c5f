"""What every channel sender is: something that delivers one rendered notification, or says why not."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from alerts.outbox import Rendered


class PermanentError(Exception):
    """Retrying will not help (an unreadable payload): fail at once."""


class Undeliverable(PermanentError):
    """Nowhere to send it: no server configured for the channel here, or the recipient's address is not one
    valid address. Retrying after the fix (``kamwatch notifications retry``) delivers it."""


class Sender(Protocol):
    @property
    def configured(self) -> bool:
        """Whether this sender has a server to send to (else everything it is given is undeliverable)."""

    async def send(self, channel: str, to: str, rendered: Rendered, notification_ids: Sequence[int]) -> None: ...
