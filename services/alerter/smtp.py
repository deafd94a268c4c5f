"""The email channel: multipart text and HTML through aiosmtplib."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from alerts.outbox import Rendered
from services.alerter.channel import PermanentError

NOTIFICATION_HEADER = "X-Kamwatch-Notification"


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

    async def send(self, channel: str, to: str, rendered: Rendered, notification_ids: Sequence[int]) -> None:
        if self.host is None:
            raise PermanentError("SMTP is not configured (KAMWATCH_SMTP_HOST)")
        if rendered.email is None:
            raise PermanentError("nothing rendered for email")
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = rendered.email.subject
        message["Message-ID"] = make_msgid(domain="kamwatch")
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
