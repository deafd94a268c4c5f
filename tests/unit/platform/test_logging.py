"""The log level is a setting; at every level, third parties that would log personal data speak from WARNING."""

from __future__ import annotations

import logging
import signal

import pytest

from services.cli.common import configure_logging
from services.platform.settings import Settings


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
