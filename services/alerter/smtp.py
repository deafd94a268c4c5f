"""The email channel: multipart text and HTML through aiosmtplib."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from urllib.parse import urlparse

import aiosmtplib

from alerts.outbox import Rendered
from services.alerter.channel import PermanentError, Undeliverable
from services.platform.clock import utc_now

NOTIFICATION_HEADER = "X-Kamwatch-Notification"


def one_address(value: str) -> str:
    """``value`` as exactly one RFC 5322 mailbox (a display name allowed), else Undeliverable: a comma must not
    send to two people, nor a CR/LF add a header."""
    try:
        header = policy.default.header_factory("to", value)
        groups, addresses, defects = header.groups, header.addresses, header.defects
    except (IndexError, ValueError, TypeError) as error:  # the parser's own failures on some malformed values
        raise Undeliverable(f"not an email address: {value!r}") from error
    if (
        defects
        or len(addresses) != 1
        or len(groups) != 1
        or groups[0].display_name is not None
        or not addresses[0].username
        or not addresses[0].domain
        or any(ord(c) < 32 or ord(c) == 127 for c in value)
    ):
        raise Undeliverable(f"not one email address: {value!r}")
    return str(addresses[0])


@dataclass
class EmailSender:
    """Multipart (text + HTML) email through aiosmtplib."""

    host: str | None
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    tls: bool = False
    timeout_s: float = 30.0
    public_url: str = "http://127.0.0.1:8000"

    @property
    def domain(self) -> str:
        """The domain of the sender address (else of the public URL): Message-IDs are made on it."""
        address = parseaddr(self.sender)[1]
        if "@" in address:
            return address.rsplit("@", 1)[1]
        return urlparse(self.public_url).hostname or "localhost"

    @property
    def configured(self) -> bool:
        return self.host is not None

    async def send(self, channel: str, to: str, rendered: Rendered, notification_ids: Sequence[int]) -> None:
        if not self.configured:
            raise Undeliverable("SMTP is not configured (KAMWATCH_SMTP_HOST)")
        if rendered.email is None:
            raise PermanentError("nothing rendered for email")
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = one_address(to)
        message["Subject"] = rendered.email.subject
        # RFC 5322 Date and Message-ID (on our own domain); RFC 3834: a machine wrote this, do not auto-reply.
        message["Date"] = format_datetime(utc_now(), usegmt=True)
        message["Message-ID"] = make_msgid(idstring="kamwatch", domain=self.domain)
        message["Auto-Submitted"] = "auto-generated"
        message["X-Auto-Response-Suppress"] = "All"
        message[NOTIFICATION_HEADER] = ",".join(str(i) for i in notification_ids)
        message.set_content(rendered.email.text)
        message.add_alternative(rendered.email.html, subtype="html")
        await aiosmtplib.send(
            message,
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.tls,
            start_tls=self.starttls,
            timeout=self.timeout_s,
        )
