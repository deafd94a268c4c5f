"""Property-based fuzzing of the whole /v1 API against its own OpenAPI document (schemathesis).

Every operation gets a few generated requests (valid and invalid) with an admin key on a seeded database;
schemathesis checks there is no 5xx and that status, headers and bodies match the schema.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis import checks

from services.api.app import build_app
from services.platform.database import Database
from services.platform.settings import Settings
from tests.integration.api.conftest import World
from tests.integration.api.seed import NOW
from tests.integration.api.server import serving

# Only the document is needed at import time: loaded from a dict, the schema is bound to no app (calls go to
# the served one) and this app is never started (it would open the default embedded database).
schema = schemathesis.openapi.from_dict(build_app(Settings(database_url="postgresql://unused/none")).openapi())


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    """The ndjson body is documented as a string: send it as is (each line is an event)."""
    return value.encode() if isinstance(value, str) else str(value).encode()


@pytest.fixture
def base_url(settings: Settings, world: World) -> Iterator[str]:
    # The served app opens its own engine in the server thread's event loop; Slack interactions are configured
    # (unsigned fuzzed requests must be refused with a 401, not answered 503 "not configured").
    # The fuzzer sends wrong keys on purpose, all from one address: no rate limit, or the rest would be 429s.
    configured = settings.model_copy(
        update={"slack_signing_secret": SecretStr("fuzz-signing-secret"), "auth_failure_limit": "1000000/minute"}
    )
    with serving(build_app(configured, clock=lambda: NOW, key_cache_seconds=0)) as url:
        yield url


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case: schemathesis.Case[Any], base_url: str, world: World) -> None:
    # Some schema-valid inputs are refused on purpose with a 422 naming the field (an opaque cursor that is not
    # ours, a snooze without `until` nor `minutes`, an expiry in the past): positive_data_acceptance would call
    # them failures. Everything else runs: no 5xx, documented statuses, bodies and headers, 4xx on bad input,
    # auth not ignored.
    excluded = [checks.positive_data_acceptance]
    if case.media_type == "application/x-ndjson":
        # On the wire an NDJSON body is always text: a "non-string" negative example is just another body whose
        # lines get per-event results, so there is no schema-violating request to reject.
        excluded.append(checks.negative_data_rejection)
    case.call_and_validate(base_url=base_url, headers=world.auth("admin"), excluded_checks=excluded)


_SNAPSHOT_SCHEMA = "fuzz_snapshot"


async def _snapshot(settings: Settings) -> None:
    """A copy of every table (and where each identity stands), so each scenario starts from the same world."""
    db = await Database.open(settings)
    try:
        async with db.transaction() as conn:
            await conn.execute(f"CREATE SCHEMA {_SNAPSHOT_SCHEMA}")
            for table in await _tables(conn):
                await conn.execute(f"CREATE TABLE {_SNAPSHOT_SCHEMA}.{table} AS SELECT * FROM public.{table}")
    finally:
        await db.close()


async def _restore(settings: Settings) -> None:
    db = await Database.open(settings)
    try:
        async with db.transaction() as conn:
            tables = await _tables(conn)
            await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
            for table in tables:
                stored = await conn.fetch(
                    "SELECT quote_ident(attname) AS name FROM pg_attribute WHERE attrelid = $1::regclass "
                    "AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
                    table,
                )
                columns = ", ".join(row["name"] for row in stored)
                await conn.execute(
                    f"INSERT INTO public.{table} ({columns}) OVERRIDING SYSTEM VALUE "
                    f"SELECT {columns} FROM {_SNAPSHOT_SCHEMA}.{table}"
                )
                for (column,) in await conn.fetch(
                    "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attidentity <> ''", table
                ):
                    await conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                        f"coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
                    )
    finally:
        await db.close()


async def _tables(conn: Any) -> list[str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
        "AND c.relname <> 'alembic_version' ORDER BY 1"
    )
    return [row["relname"] for row in rows]


def test_api_holds_over_sequences_of_calls(base_url: str, world: World, settings: Settings) -> None:
    """Stateful phase: sequences of calls linked through the responses (ids and cursors of one answer used by
    the next call), every check on each response, as `schemathesis run --phases stateful --checks all`. Each
    scenario starts from the seeded world (what one changes must not change what the next one draws)."""
    machine = schema.as_state_machine()
    headers = world.auth("admin")
    asyncio.run(_snapshot(settings))

    class Sequences(machine):  # type: ignore[misc,valid-type]
        def setup(self) -> None:
            asyncio.run(_restore(settings))

        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            return {"base_url": base_url, "headers": headers}

        def validate_response(self, response: Any, case: schemathesis.Case[Any], **kwargs: Any) -> None:
            case.validate_response(
                response, excluded_checks=[checks.positive_data_acceptance], headers=headers, transport_kwargs=kwargs
            )

    Sequences.run(
        settings=hypothesis.settings(
            max_examples=40,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
