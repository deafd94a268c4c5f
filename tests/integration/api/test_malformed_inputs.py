"""Every malformed cursor, id or NUL answers 4xx, never 5xx: forged cursors of each paginated list, NUL in paths,
queries, forms and bodies, ids and times out of range, a login key with a NUL. Through a real server (uvicorn,
real HTTP), so that what only the wire refuses (a header the response could not carry) shows too."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr

from services.api.app import build_app
from services.platform.settings import Settings
from tests.integration.api.conftest import World
from tests.integration.api.seed import NOW
from tests.integration.api.server import serving


def cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


FORGED_CURSORS = [
    cursor("sNaN", "a"),  # a signalling NaN the driver cannot encode
    cursor("NaN", "a"),
    cursor("Infinity", "z"),
    cursor("1e999999", "a"),  # beyond numeric
    cursor("-1e400", "a"),
    cursor("1", "a\u0000"),  # NUL in the id
    cursor("2026-01-01T00:00:00", "x"),  # a time without offset
    cursor("2026-01-01T00:00:00+00:00", "a\u0000"),
    cursor("0001-01-01T00:00:00+00:00", "x"),
    cursor("9999-12-31T23:59:59-14:00", "x"),  # beyond year 9999 in UTC
    cursor("99999999999999999999999"),  # beyond bigint
    cursor("\u00b2"),  # a digit to isdigit(), not to int()
    cursor("\u0661\u0662"),  # Arabic-Indic digits
    cursor("-1"),
    cursor(1),
    cursor("x" * 5000),
    "a\u0000",
    "!!!!",
]


@pytest.fixture
def base_url(settings: Settings, world: World) -> Iterator[str]:
    configured = settings.model_copy(update={"slack_signing_secret": SecretStr("malformed-signing-secret")})
    with serving(build_app(configured, clock=lambda: NOW, key_cache_seconds=0)) as url:
        yield url


def requests_of(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    alert = world.alerts["acme"]
    calls: list[tuple[str, str, dict[str, Any]]] = []
    for forged in FORGED_CURSORS:
        for sort in ("risk", "arr_at_risk", "change"):
            calls.append(("GET", "/v1/accounts", {"params": {"cursor": forged, "sort": sort}}))
        calls.append(("GET", "/v1/alerts", {"params": {"cursor": forged}}))
        calls.append(("GET", "/v1/accounts/acme/timeline", {"params": {"cursor": forged}}))
    for path in (
        "/v1/accounts/ac%00me/health",
        "/v1/accounts/ac%00me/timeline",
        "/v1/accounts?owner=%00",
        "/accounts/ac%00me",
        "/accounts/acme?locale=%00",
        "/?owner=%00",
        "/login?locale=%00",
        "/widget/accounts/ac%00me?token=x",
        "/widget/accounts/acme?token=%00",
        "/v1/accounts/acme/history?from=0000-01-01",
        "/v1/accounts/" + "%C3%A9" * 3000 + "/health",
    ):
        calls.append(("GET", path, {}))
    for path in (
        "/v1/alerts/99999999999999999999/ack",
        "/v1/alerts/9223372036854775808/snooze",
        "/v1/alerts/-1/resolve",
        "/v1/alerts/0/feedback",
    ):
        calls.append(("POST", path, {"json": {}}))
    for path in (
        "/widget/accounts/acme/alerts/99999999999999999999/ack",
        "/widget/accounts/acme/alerts/-5/snooze",
        "/widget/accounts/ac%00me/alerts/1/ack",
    ):
        calls.append(("POST", path, {"data": {"token": "x\u0000", "locale": "\u0000"}}))
    for key in ("kw_\u0000", "kw_12345678_\u0000secret", "\u0000"):
        calls.append(("POST", "/login", {"data": {"key": key}}))
    calls += [
        ("POST", "/v1/widget-tokens", {"json": {"account_id": "a\u0000"}}),
        ("POST", "/v1/widget-tokens", {"json": {"account_id": "acme", "kam_id": "\u0000"}}),
        ("POST", "/v1/accounts/acme/override", {"json": {"level": "high", "reason": "a\u0000"}}),
        ("POST", "/v1/accounts/acme/override", {"json": {"level": "high", "reason": "x", "hours": 10**12}}),
        (
            "POST",
            "/v1/accounts/acme/override",
            {"json": {"level": "high", "reason": "x", "expires_at": "9999-12-31T23:59:59-14:00"}},
        ),
        ("POST", f"/v1/alerts/{alert}/snooze", {"json": {"minutes": 10**12}}),
        ("POST", f"/v1/alerts/{alert}/snooze", {"json": {"until": "9999-12-31T23:59:59-14:00"}}),
        ("POST", f"/v1/alerts/{alert}/ack", {"json": {"note": "\u0000"}}),
        ("POST", f"/v1/alerts/{alert}/feedback", {"json": {"verdict": "useful", "comment": "\u0000"}}),
        ("POST", "/v1/slack/interactions", {"content": b"payload=%00"}),
        ("POST", "/v1/events", {"content": b'{"id":"\\u0000"}'}),
        ("POST", "/v1/events", {"content": b"[1,2", "headers": {"content-type": "application/json"}}),
    ]
    return calls


def test_malformed_inputs_answer_4xx(base_url: str, world: World) -> None:
    answers = []
    with httpx.Client(base_url=base_url, headers=world.auth("admin"), timeout=30) as http:
        for method, url, options in requests_of(world):
            response = http.request(method, url, **options)
            cursor_sent = str(options.get("params", {}).get("cursor", ""))
            answers.append(
                (response.status_code, method, url[:80] + (" cursor " + cursor_sent[:20] if cursor_sent else ""))
            )
        # a key no header could carry arrives as raw bytes
        raw = http.get("/v1/accounts", headers={b"X-API-Key": "kw_\xe9".encode("latin-1"), b"Authorization": b""})
        answers.append((raw.status_code, "GET", "/v1/accounts with a Latin-1 key"))
    assert [a for a in answers if not 400 <= a[0] < 500] == []
    # the forged cursors say so, naming the field
    forged = {a[0] for a in answers if " cursor " in a[2]}
    assert forged == {422}
