"""Markers by what a test needs, so that a part of the suite can be chosen (``pytest -m "not browser"``).

``database`` is given to every test that uses the PostgreSQL fixtures; ``processes``, ``browser`` and
``kafka`` are set by the modules that start programs, Chromium or a Kafka broker. ``tests/unit`` holds the
pure tests (no database, no process): ``make test-fast`` runs them alone.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "pg_server_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.database)
