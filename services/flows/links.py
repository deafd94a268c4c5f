"""Links in notifications: each opens the account for the one who receives it.

A link carries a widget token (``health_engine.access``: HMAC-signed, expiring) bound to the account and to
the recipient KAM, minted when the message is sent; the page it opens (``/widget/accounts/{id}``) shows the
account with its actions and next steps, and acts as that KAM (only the account's owner, their managers or an
admin may act). The team channel has no single reader: its messages carry no link, and its Open button asks
kamwatch for a link of the clicker's own (``services/api/slack_actions.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

from alerts.messages import Links, Verdict
from health_engine.access import mint, signing_secret
from services.platform.database import Database


def widget_path(account_id: str) -> str:
    return f"/widget/accounts/{quote(account_id, safe='')}"


def widget_url(base_url: str, account_id: str, token: str | None) -> str:
    query = f"?{urlencode({'token': token})}" if token is not None else ""
    return f"{base_url.rstrip('/')}{widget_path(account_id)}{query}"


def feedback_url(base_url: str, account_id: str, alert_id: int, verdict: Verdict, token: str | None) -> str:
    """The page that asks to confirm a verdict (a GET never records one: mail scanners follow links)."""
    query = {"verdict": verdict, "via": "email"} | ({"token": token} if token is not None else {})
    return f"{base_url.rstrip('/')}{widget_path(account_id)}/alerts/{alert_id}/feedback?{urlencode(query)}"


@dataclass(frozen=True, slots=True)
class SignedLinks:
    """Links for one recipient KAM, valid until ``expires_at``."""

    base_url: str
    secret: bytes
    kam_id: str
    expires_at: datetime
    owners: Mapping[str, str | None]
    """Each account's owner now: a link ends should the account change owner (``grant_holds``)."""

    def _token(self, account_id: str) -> str:
        # Minted by kamwatch itself, not by an API key (as the command line does).
        owner = self.owners.get(account_id)
        return mint(self.secret, account_id, self.kam_id, self.expires_at, key_id=None, owner_kam_id=owner)

    def account(self, account_id: str) -> str | None:
        return widget_url(self.base_url, account_id, self._token(account_id))

    def feedback(self, account_id: str, alert_id: int, verdict: Verdict) -> str | None:
        return feedback_url(self.base_url, account_id, alert_id, verdict, self._token(account_id))


@dataclass(frozen=True, slots=True)
class NoLinks:
    """For a message without a single reader (the team channel)."""

    def account(self, account_id: str) -> str | None:
        return None

    def feedback(self, account_id: str, alert_id: int, verdict: Verdict) -> str | None:
        return None


@dataclass(frozen=True, slots=True)
class UnsignedLinks:
    """Where links lead, without a token (``notify=log|file``: messages shown, not sent)."""

    base_url: str

    def account(self, account_id: str) -> str | None:
        return widget_url(self.base_url, account_id, None)

    def feedback(self, account_id: str, alert_id: int, verdict: Verdict) -> str | None:
        return feedback_url(self.base_url, account_id, alert_id, verdict, None)


@dataclass
class LinkMaker:
    """Signed links for whoever receives a message (the signing key read once from the settings or the
    database, as the API reads it to verify them)."""

    db: Database
    base_url: str
    ttl: timedelta
    configured_secret: str | None = None
    _secret: bytes | None = None

    async def for_recipient(self, kam_id: str | None, now: datetime, owners: Mapping[str, str | None]) -> Links:
        """The links of a message to ``kam_id`` (None: the team channel, no links of its own) about accounts with
        these ``owners``."""
        if kam_id is None:
            return NoLinks()
        if self._secret is None:
            async with self.db.unit_of_work() as conn:
                self._secret = await signing_secret(conn, self.configured_secret, now=now)
        return SignedLinks(self.base_url, self._secret, kam_id, (now + self.ttl).replace(microsecond=0), owners)
