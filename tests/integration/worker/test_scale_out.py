"""Scale-out: two worker processes, each given half of the partitions as a consumer group would assign them,
then two processes sharing the sweep, end with the state of one process doing it all."""

from __future__ import annotations

import asyncio
import os
import sys
import zlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from services.platform.database import Database
from services.platform.settings import Settings
from services.simulator.generator import simulate_to_dir
from tests.dbutil import cloned_database, snapshot

pytestmark = pytest.mark.processes

KAMWATCH = Path(sys.executable).with_name("kamwatch")
PARTITIONS = 6


def partition_of(line: bytes) -> int:
    """The partition of an event keyed by its subject (a stable hash, as Kafka's key partitioner is)."""
    subject = line.split(b'"subject":"', 1)[1].split(b'"', 1)[0]
    return zlib.crc32(subject) % PARTITIONS


async def kamwatch(url: str, data_dir: Path, *args: str) -> None:
    env = {**os.environ, "KAMWATCH_DATABASE_URL": url, "KAMWATCH_DATA_DIR": str(data_dir)}
    process = await asyncio.create_subprocess_exec(
        str(KAMWATCH), *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()


async def final_state(url: str) -> dict[str, Any]:
    db = await Database.open(Settings(database_url=url))
    try:
        state: dict[str, Any] = await snapshot(db)
        async with db.unit_of_work() as conn:
            for name, query in {
                "health": "SELECT account_id, as_of, risk, level, components, drivers FROM account_health ORDER BY 1",
                "sweep_rows": "SELECT account_id, as_of, risk, level, driver_codes FROM account_health_history "
                "WHERE trigger = 'sweep' ORDER BY 1, 2",
                "sweep_runs": "SELECT count(*), sum(accounts) FROM sweep_runs",
            }.items():
                state[name] = [tuple(row) for row in await conn.execute(text(query))]
    finally:
        await db.close()
    return state


async def test_two_workers_on_disjoint_partitions_equal_one(server_url: str, tmp_path: Path) -> None:
    events = simulate_to_dir(tmp_path / "sim", 24, 3, 50, 5, date(2026, 1, 1)).events_path
    lines = [line for line in events.read_bytes().splitlines() if line]
    halves = [tmp_path / "half-0.ndjson", tmp_path / "half-1.ndjson"]
    for index, half in enumerate(halves):
        half.write_bytes(b"\n".join(line for line in lines if partition_of(line) % 2 == index) + b"\n")
    as_of = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()

    async with cloned_database(server_url) as single_url, cloned_database(server_url) as scaled_url:
        await kamwatch(single_url, tmp_path, "replay", str(events), "--batch-size", "400")
        await kamwatch(single_url, tmp_path, "sweep", "--as-of", as_of, "--shards", "8")
        expected = await final_state(single_url)

        await asyncio.gather(
            *(kamwatch(scaled_url, tmp_path, "replay", str(half), "--batch-size", "400") for half in halves)
        )
        await asyncio.gather(
            *(kamwatch(scaled_url, tmp_path, "sweep", "--as-of", as_of, "--shards", "8") for _ in range(2))
        )
        actual = await final_state(scaled_url)

    accounts = len(expected["accounts"])
    assert accounts == 24
    assert expected["sweep_runs"] == [(8, accounts)]
    assert len(expected["sweep_rows"]) == accounts  # every account swept once
    assert actual == expected
