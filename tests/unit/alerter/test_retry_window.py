"""When the alerter tries a failing notification again: backoff within the outage window, the last try on its
end, then nothing (failed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.alerter.delivery import next_attempt_at

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WINDOW = {"window_s": 3600.0, "base_s": 60.0, "cap_s": 900.0, "jitter": 0.0}


def test_backoff_doubles_from_the_first_failure() -> None:
    # equal jitter at 0: half the exponential delay
    assert next_attempt_at(T0, T0, 1, **WINDOW) == T0 + timedelta(seconds=30)
    assert next_attempt_at(T0, T0 + timedelta(seconds=30), 2, **WINDOW) == T0 + timedelta(seconds=90)


def test_the_backoff_is_capped() -> None:
    at = T0 + timedelta(minutes=20)
    assert next_attempt_at(T0, at, 30, **WINDOW) == at + timedelta(seconds=450)


def test_the_last_try_falls_on_the_end_of_the_window() -> None:
    at = T0 + timedelta(minutes=58)
    assert next_attempt_at(T0, at, 12, **WINDOW) == T0 + timedelta(hours=1)


def test_nothing_after_the_window() -> None:
    assert next_attempt_at(T0, T0 + timedelta(hours=1), 13, **WINDOW) is None
    assert next_attempt_at(T0, T0 + timedelta(days=3), 2, **WINDOW) is None
