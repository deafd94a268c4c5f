"""The demo's stand-ins for Slack and the mail server: a Slack Web API endpoint on the demo's own API app and an
SMTP server (aiosmtpd), both keeping what they receive in memory, shown on ``/demo/inbox``."""

from __future__ import annotations

import email
import email.policy
import html
import json
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

_KEPT = 200


@dataclass(frozen=True, slots=True)
class Received:
    at: datetime
    channel: str  # slack or email
    recipient: str
    title: str
    body: str


@dataclass
class Inbox:
    clock: Callable[[], datetime]
    messages: deque[Received] = field(default_factory=lambda: deque(maxlen=_KEPT))

    def add(self, channel: str, recipient: str, title: str, body: str) -> None:
        self.messages.appendleft(Received(self.clock(), channel, recipient, title, body))


def slack_text(payload: dict[str, Any]) -> tuple[str, str]:
    """The headline and the readable text of a chat.postMessage payload (Block Kit sections)."""
    lines = []
    for block in payload.get("blocks") or []:
        text = block.get("text")
        if isinstance(text, dict) and text.get("text"):
            lines.append(str(text["text"]))
        for element in block.get("elements") or block.get("fields") or []:
            if isinstance(element, dict) and isinstance(element.get("text"), str | dict):
                value = element["text"]
                lines.append(str(value.get("text") if isinstance(value, dict) else value))
    title = str(payload.get("text") or (lines[0] if lines else ""))
    return title, "\n".join(lines) or title


def inbox_router(inbox: Inbox) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.post("/demo/slack/api/{method}")
    async def slack_api(method: str, request: Request) -> JSONResponse:
        body = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            payload: dict[str, Any] = json.loads(body or b"{}")
        else:
            payload = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            for key in ("blocks", "attachments"):
                if isinstance(payload.get(key), str):
                    payload[key] = json.loads(payload[key])
        if method == "chat.postMessage":
            title, text = slack_text(payload)
            inbox.add("slack", str(payload.get("channel", "")), title, text)
        return JSONResponse({"ok": True, "channel": payload.get("channel"), "ts": "0"})

    @router.get("/demo/inbox", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        rows = "".join(
            f"<tr><td>{m.at:%H:%M:%S}</td><td>{m.channel}</td><td>{html.escape(m.recipient)}</td>"
            f"<td><b>{html.escape(m.title)}</b><pre>{html.escape(m.body)}</pre></td></tr>"
            for m in inbox.messages
        )
        return HTMLResponse(
            "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=5><title>kamwatch demo inbox</title>"
            "<style>body{font-family:system-ui;margin:2em}td{vertical-align:top;padding:.4em;border-bottom:1px solid"
            " #ddd}pre{white-space:pre-wrap;margin:.3em 0}</style><h1>Notifications sent by the demo</h1>"
            f"<p>{len(inbox.messages)} messages (Slack stand-in and SMTP catcher), newest first.</p>"
            f"<table><tr><th>time</th><th>via</th><th>to</th><th>message</th></tr>{rows}</table>"
        )

    return router


class _MailHandler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        message = email.message_from_bytes(raw if isinstance(raw, bytes) else raw.encode(), policy=email.policy.default)
        text = ""
        if isinstance(message, EmailMessage) and (part := message.get_body(("plain",))) is not None:
            text = str(part.get_content())
        self.inbox.add("email", ", ".join(envelope.rcpt_tos), str(message.get("subject", "")), text)
        return "250 Message accepted"


def start_smtp_catcher(inbox: Inbox, host: str = "127.0.0.1") -> Controller:
    """An SMTP server on a free port of ``host`` (``controller.port``); stop it with ``controller.stop()``."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port = int(probe.getsockname()[1])
    controller = Controller(_MailHandler(inbox), hostname=host, port=port)
    controller.start()
    return controller
