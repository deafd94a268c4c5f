"""The demo's stand-ins for Slack and the mail server: a Slack Web API endpoint on the demo's own API app and an
SMTP server (aiosmtpd), both keeping what they receive in memory, shown on ``/demo/inbox`` as the person would
see them: Slack messages with their sections, fields and buttons (the buttons act, signed as Slack signs),
emails in their HTML."""

from __future__ import annotations

import asyncio
import email
import email.policy
import html
import json
import re
import socket
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from slack_sdk.signature import SignatureVerifier

_KEPT = 200


@dataclass(frozen=True, slots=True)
class Received:
    at: datetime
    channel: str  # slack or email
    recipient: str
    title: str
    body: str
    blocks: tuple[dict[str, Any], ...] = ()
    html: str | None = None


@dataclass
class Inbox:
    clock: Callable[[], datetime]
    messages: deque[Received] = field(default_factory=lambda: deque(maxlen=_KEPT))
    counts: Counter[str] = field(default_factory=Counter)
    flash: str | None = None

    def add(
        self,
        channel: str,
        recipient: str,
        title: str,
        body: str,
        *,
        blocks: tuple[dict[str, Any], ...] = (),
        html: str | None = None,
    ) -> None:
        self.counts[channel] += 1
        self.messages.appendleft(Received(self.clock(), channel, recipient, title, body, blocks, html))


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


# --- Slack's look: mrkdwn and Block Kit in HTML ---------------------------------------------------------------

_LINK = re.compile(r"<(https?://[^|>]+)(?:\|([^>]+))?>")


def mrkdwn(text: str) -> str:
    """Slack's mrkdwn as HTML: links ``<url|label>``, *bold*, _italic_, ~strike~, line breaks; the rest escaped."""
    out, last = [], 0
    for match in _LINK.finditer(text):
        out.append(_inline(text[last : match.start()]))
        url, label = match.group(1), match.group(2) or match.group(1)
        out.append(f'<a href="{html.escape(url)}" target="_blank" rel="noopener">{_inline(label)}</a>')
        last = match.end()
    out.append(_inline(text[last:]))
    return "".join(out).replace("\n", "<br>")


def _inline(text: str) -> str:
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"(?<![\w*])\*(?!\s)([^*\n]+?)\*(?![\w*])", r"<b>\1</b>", escaped)
    escaped = re.sub(r"(?<![\w_])_(?!\s)([^_\n]+?)_(?![\w_])", r"<i>\1</i>", escaped)
    return re.sub(r"(?<![\w~])~(?!\s)([^~\n]+?)~(?![\w~])", r"<s>\1</s>", escaped)


def _text(element: dict[str, Any] | None) -> str:
    if not isinstance(element, dict):
        return ""
    value = str(element.get("text", ""))
    return mrkdwn(value) if element.get("type") == "mrkdwn" else html.escape(value)


def _button(button: dict[str, Any], recipient: str) -> str:
    label = _text(button.get("text"))
    style = f" slack-{button['style']}" if button.get("style") in ("primary", "danger") else ""
    if button.get("url"):
        return f'<a class="slack-button{style}" href="{html.escape(str(button["url"]))}" target="_blank">{label}</a>'
    if recipient.startswith("#"):
        # In a channel the person who presses is whoever reads it: the stand-in cannot tell who, so only a KAM's
        # direct messages act.
        return f'<button class="slack-button{style}" type="button" disabled title="{recipient}">{label}</button>'
    fields = {"action_id": button.get("action_id", ""), "value": button.get("value", ""), "user": recipient}
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(str(value))}">' for name, value in fields.items()
    )
    return (
        f'<form method="post" action="/demo/slack/click" class="slack-action">{hidden}'
        f'<button class="slack-button{style}" type="submit">{label}</button></form>'
    )


def slack_blocks(blocks: tuple[dict[str, Any], ...], recipient: str) -> str:
    """The blocks as Slack lays them out (header, sections with fields, context, dividers, buttons)."""
    parts = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            parts.append(f'<div class="slack-header">{_text(block.get("text"))}</div>')
        elif kind == "section":
            if block.get("text"):
                parts.append(f'<div class="slack-section">{_text(block.get("text"))}</div>')
            if block.get("fields"):
                cells = "".join(f"<div>{_text(f)}</div>" for f in block["fields"])
                parts.append(f'<div class="slack-fields">{cells}</div>')
        elif kind == "context":
            parts.append(f'<div class="slack-context">{" ".join(_text(e) for e in block.get("elements", []))}</div>')
        elif kind == "divider":
            parts.append("<hr>")
        elif kind == "actions":
            buttons = "".join(_button(b, recipient) for b in block.get("elements", []) if b.get("type") == "button")
            parts.append(f'<div class="slack-actions">{buttons}</div>')
    return "".join(parts)


_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f4f4f6;color:#1d1c1d}
main{max-width:860px;margin:0 auto;padding:16px}
h1{font-size:20px;margin:0 0 4px} .muted{color:#616061;font-size:12px}
.tabs{display:flex;gap:8px;margin:12px 0} .tabs a{padding:4px 10px;border-radius:14px;background:#fff;
border:1px solid #ddd;color:#1d1c1d;text-decoration:none} .tabs a.on{background:#1d1c1d;color:#fff}
.message{background:#fff;border:1px solid #e2e2e2;border-radius:8px;padding:12px 14px;margin:10px 0;
overflow-wrap:anywhere}
.meta{display:flex;gap:8px;align-items:center;margin-bottom:6px;font-size:13px}
.who{font-weight:700} .app{background:#e8e8e8;border-radius:3px;padding:0 4px;font-size:11px;color:#555}
.via-email .who::before{content:"✉ ";} .via-slack .who::before{content:"# ";color:#611f69}
.slack-header{font-size:17px;font-weight:800;margin:4px 0 8px}
.slack-section{margin:6px 0} .slack-fields{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:6px 16px;
margin:6px 0} .slack-context{color:#616061;font-size:12px;margin:6px 0}
.slack-actions{display:flex;flex-wrap:wrap;gap:8px;margin:6px 0 10px} .slack-action{margin:0}
.slack-button{display:inline-block;font:600 13px system-ui,sans-serif;padding:5px 12px;border-radius:4px;
border:1px solid #bbb;background:#fff;color:#1d1c1d;cursor:pointer;text-decoration:none}
.slack-primary{background:#007a5a;border-color:#007a5a;color:#fff} .slack-danger{background:#e01e5a;color:#fff}
hr{border:0;border-top:1px solid #e2e2e2} a{color:#1264a3}
iframe{width:100%;height:520px;border:1px solid #e2e2e2;border-radius:4px;background:#fff}
.flash{background:#e8f5e9;border:1px solid #a5d6a7;border-radius:6px;padding:8px 12px;margin:8px 0}
details summary{cursor:pointer;color:#616061;font-size:12px} pre{white-space:pre-wrap}
"""


def _channel_query(channel: str | None) -> str:
    return "?" + urlencode({"channel": channel}) if channel else ""


def inbox_page(inbox: Inbox, channel: str | None) -> str:
    shown = [m for m in inbox.messages if channel in (None, m.channel)]
    items = []
    for m in shown:
        if m.channel == "slack" and m.blocks:
            content = slack_blocks(m.blocks, m.recipient)
        elif m.channel == "email" and m.html:
            content = (
                f'<div class="slack-header">{html.escape(m.title)}</div>'
                f'<iframe sandbox="allow-popups allow-popups-to-escape-sandbox" srcdoc="{html.escape(m.html)}"'
                f' title="{html.escape(m.title)}"></iframe>'
                f"<details><summary>text/plain</summary><pre>{html.escape(m.body)}</pre></details>"
            )
        else:
            content = f"<b>{html.escape(m.title)}</b><pre>{html.escape(m.body)}</pre>"
        who = f'<span class="who">{html.escape(m.recipient)}</span><span class="app">kamwatch</span>'
        items.append(
            f'<div class="message via-{m.channel}"><div class="meta">{who}'
            f'<span class="muted">{m.at:%H:%M:%S}</span></div>{content}</div>'
        )
    tabs = "".join(
        f'<a class="{"on" if channel == key else ""}" href="/demo/inbox{_channel_query(key)}">{label} ({count})</a>'
        for key, label, count in (
            (None, "All", sum(inbox.counts.values())),
            ("slack", "Slack", inbox.counts["slack"]),
            ("email", "Email", inbox.counts["email"]),
        )
    )
    flash = f'<div class="flash">{html.escape(inbox.flash)}</div>' if inbox.flash else ""
    inbox.flash = None
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width,"
        "initial-scale=1'><meta http-equiv=refresh content=10><title>kamwatch demo inbox</title>"
        f"<style>{_STYLE}</style><main><h1>Notifications sent by the demo</h1>"
        "<p class=muted>The local Slack stand-in and SMTP catcher: what each KAM received, newest first. "
        "The buttons act as in Slack (signed interactions to the API).</p>"
        f"<div class=tabs>{tabs}</div>{flash}{''.join(items) or '<p class=muted>Nothing sent yet.</p>'}</main>"
    )


def inbox_router(inbox: Inbox, *, signing_secret: str, api_base: str) -> APIRouter:
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
            blocks = tuple(b for b in payload.get("blocks") or [] if isinstance(b, dict))
            inbox.add("slack", str(payload.get("channel", "")), title, text, blocks=blocks)
        return JSONResponse({"ok": True, "channel": payload.get("channel"), "ts": f"{time.time():.6f}"})

    @router.post("/demo/slack/click")
    async def click(
        action_id: Annotated[str, Form()], value: Annotated[str, Form()], user: Annotated[str, Form()]
    ) -> RedirectResponse:
        """What Slack does when a person presses a button: a signed block_actions interaction to the API."""
        payload = {
            "type": "block_actions",
            "user": {"id": user},
            "actions": [{"action_id": action_id, "value": value, "type": "button"}],
        }
        body = urlencode({"payload": json.dumps(payload)})
        # Signed at the demo's own time: the API checks the timestamp against the same clock.
        at = int(inbox.clock().timestamp())
        status, answer = await asyncio.to_thread(
            _post_signed, f"{api_base}/v1/slack/interactions", body, signing_secret, at
        )
        try:
            said = json.loads(answer).get("text") or json.loads(answer).get("detail") or answer
        except ValueError:
            said = answer
        inbox.flash = f"Slack → kamwatch ({status}): {said}"
        return RedirectResponse("/demo/inbox", status_code=303)

    @router.get("/demo/inbox", response_class=HTMLResponse)
    async def page(channel: str | None = None) -> HTMLResponse:
        return HTMLResponse(inbox_page(inbox, channel if channel in ("slack", "email") else None))

    return router


def _post_signed(url: str, body: str, secret: str, at: int) -> tuple[int, str]:
    timestamp = str(at)
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    request = urllib.request.Request(
        url,
        data=body.encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature or "",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()


class _MailHandler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        message = email.message_from_bytes(raw if isinstance(raw, bytes) else raw.encode(), policy=email.policy.default)
        text, rich = "", None
        if isinstance(message, EmailMessage):
            if (part := message.get_body(("plain",))) is not None:
                text = str(part.get_content())
            if (part := message.get_body(("html",))) is not None:
                rich = str(part.get_content())
        subject = str(message.get("subject", ""))
        self.inbox.add("email", ", ".join(envelope.rcpt_tos), subject, text, html=rich)
        return "250 Message accepted"


def start_smtp_catcher(inbox: Inbox, host: str = "127.0.0.1") -> Controller:
    """An SMTP server on a free port of ``host`` (``controller.port``); stop it with ``controller.stop()``."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port = int(probe.getsockname()[1])
    controller = Controller(_MailHandler(inbox), hostname=host, port=port)
    controller.start()
    return controller
