"""Real local servers for the delivery tests: an aiosmtpd SMTP server and an HTTP server standing in for Slack."""

from __future__ import annotations

import asyncio
import email
import json
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.processes import free_port


@dataclass
class Inbox:
    """What an SMTP server received (parsed messages), for assertions."""

    messages: list[EmailMessage] = field(default_factory=list)
    block: bool = False
    """Hang in DATA (never answer): stands for a server that stalls mid-send."""
    entered: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.entered.set()
        if self.block:
            await asyncio.sleep(3600)
        raw = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        message = email.message_from_bytes(raw, policy=default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def notification_ids(self) -> list[int]:
        return [int(i) for m in self.messages for i in str(m["X-Kamwatch-Notification"]).split(",")]


class SmtpServer:
    """An aiosmtpd server on 127.0.0.1:``port`` that can be stopped and started again (an outage)."""

    def __init__(self, port: int | None = None, inbox: Inbox | None = None) -> None:
        self.port = port or free_port()
        self.inbox = inbox or Inbox()
        self._controller: Controller | None = None

    def start(self) -> SmtpServer:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@dataclass
class SlackRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float = field(default_factory=time.monotonic)
    """When it came (``time.monotonic``): benchmarks time notifications by it."""


class SlackStandIn:
    """Answers ``POST /api/chat.postMessage`` like Slack (``{"ok": true}``) and ``POST /webhook`` with ``ok``;
    records every request. ``fail`` makes it answer 500 instead; ``stop`` then ``start`` again on the same port
    is an outage (connections refused meanwhile)."""

    def __init__(self, port: int | None = None) -> None:
        self.requests: list[SlackRequest] = []
        self.fail = False
        self._server: ThreadingHTTPServer | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if outer.fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                ctype = self.headers.get("Content-Type", "")
                body = json.loads(raw) if "json" in ctype else {"raw": raw.decode()}
                outer.requests.append(SlackRequest(self.path, dict(self.headers), body))
                answer = b"ok" if self.path == "/webhook" else json.dumps({"ok": True, "ts": "1.0"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain" if self.path == "/webhook" else "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._handler = Handler
        self.port = port or free_port()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook"

    def start(self) -> SlackStandIn:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
