"""The alerting's database adapters, thin functions over an asyncpg connection owned by the caller, inside its
transaction (nothing here commits): ``changes`` (what an evaluation reads and writes), ``queue`` (the
notification outbox), ``lifecycle`` (acknowledge, snooze, resolve, feedback), ``reports`` (listings and
precision). Decisions stay in the pure core (rules, reconcile, policy, compose)."""

from __future__ import annotations

from typing import Any

import orjson


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def json_value(raw: Any) -> Any:
    return orjson.loads(raw) if isinstance(raw, str | bytes) else raw
