"""Logs at INFO carry no secrets: widget tokens and keys in URLs are redacted from the access log; the level is a
setting."""

from __future__ import annotations

import logging
import signal

import pytest

from services.cli.common import configure_logging
from services.platform.observability import RedactSecrets
from services.platform.settings import Settings


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/widget/accounts/acme?token=eyJhY2NvdW50IjoiYWNtZSJ9.c2ln", "/widget/accounts/acme?token=[redacted]"),
        ("/widget/accounts/acme?locale=fr&token=abc&x=1", "/widget/accounts/acme?locale=fr&token=[redacted]&x=1"),
        ("/login?KEY=kw_1234_secret", "/login?KEY=[redacted]"),
        ("/v1/accounts?owner=kam-1&cursor=WyIxIl0", "/v1/accounts?owner=kam-1&cursor=WyIxIl0"),
    ],
)
def test_the_access_log_redacts_secrets_in_query_strings(path: str, shown: str) -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", path, "1.1", 200),
        None,
    )
    assert RedactSecrets().filter(record)
    assert record.getMessage() == f'127.0.0.1:5 - "GET {shown} HTTP/1.1" 200'


def test_the_log_level_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAMWATCH_LOG_LEVEL", "WARNING")
    assert Settings().log_level == "WARNING"
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    handler = signal.getsignal(signal.SIGTERM)
    try:
        root.handlers.clear()
        configure_logging("WARNING")
        assert root.level == logging.WARNING
        assert logging.getLogger("mail.log").level == logging.WARNING
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        signal.signal(signal.SIGTERM, handler)
