"""The Slack channel: ``chat.postMessage`` with a bot token, else an incoming webhook (slack_sdk)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from alerts.outbox import Rendered
from services.alerter.channel import PermanentError, Undeliverable

UNKNOWN_RECIPIENT = frozenset({"channel_not_found", "user_not_found", "not_in_channel", "is_archived", "user_disabled"})
"""Slack errors saying the address itself is wrong: retrying will not reach it."""


@dataclass
class SlackSender:
    """Slack through slack_sdk: ``chat.postMessage`` with a bot token (DMs go to the user id, which Slack opens
    as a DM), else the incoming webhook (every message lands in the webhook's channel).

    slack_sdk's async clients need aiohttp, which kamwatch does not ship; the sync clients (urllib) run in a
    worker thread instead."""

    bot_token: str | None = None
    base_url: str = "https://slack.com/api/"
    webhook_url: str | None = None
    timeout_s: int = 30

    @property
    def configured(self) -> bool:
        return bool(self.bot_token or self.webhook_url)

    async def send(self, channel: str, to: str, rendered: Rendered, notification_ids: Sequence[int]) -> None:
        if not self.configured:
            raise Undeliverable("Slack is not configured (KAMWATCH_SLACK_BOT_TOKEN or KAMWATCH_SLACK_WEBHOOK_URL)")
        if rendered.slack is None:
            raise PermanentError("nothing rendered for Slack")
        body = dict(rendered.slack)
        if self.bot_token:
            if not to.strip():
                raise Undeliverable("no Slack channel or user id to send to")
            client = WebClient(token=self.bot_token, base_url=self.base_url, timeout=self.timeout_s)
            try:
                await asyncio.to_thread(client.chat_postMessage, channel=to, **body)
            except SlackApiError as error:
                code = error.response.get("error") if error.response is not None else None
                if code in UNKNOWN_RECIPIENT:
                    raise Undeliverable(f"Slack cannot reach {to!r}: {code}") from None
                raise
        elif self.webhook_url:
            webhook = WebhookClient(self.webhook_url, timeout=self.timeout_s)
            response = await asyncio.to_thread(webhook.send_dict, body)
            if response.status_code != 200:
                raise RuntimeError(f"Slack webhook answered {response.status_code}: {response.body[:200]}")
