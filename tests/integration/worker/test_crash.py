"""A worker killed with SIGKILL mid-stream and restarted ends with exactly the state of a clean run."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import asyncpg
import pytest

from health_engine.config import load_scoring_config
from services.flows.evaluation import HealthEngine
from services.flows.ingest import Pipeline
from services.flows.replay import replay_file
from services.platform.database import Database
from services.platform.settings import Settings
from tests.configs import SCORING_PATH
from tests.dbutil import admin_dsn, cloned_database, snapshot
from tests.events import at, encode, event

pytestmark = pytest.mark.processes

KAMWATCH = Path(sys.executable).with_name("kamwatch")


def write_stream(path: Path, accounts: int, per_account: int) -> int:
    """A mixed stream with duplicates, late events and a few bad lines."""
    lines: list[bytes] = []
    for n in range(per_account):
        for a in range(accounts):
            subject = f"acc-{a}"
            day = 1 + (n * 7 + a) % 27
            lines.append(
                encode(event("usage", subject, at(day, hour=n % 24), {"quantity": n % 5, "user_id": f"u{n % 7}"}))
            )
            if n % 10 == 0:
                status = ["opened", "escalated", "resolved"][(n // 10) % 3]
                ticket = {"ticket_id": f"t{n % 3}", "status": status, "priority": "high"}
                lines.append(encode(event("support_ticket", subject, at(day), ticket)))
            if n % 25 == 0:
                lines.append(lines[-1])  # an exact redelivery
                lines.append(b'{"specversion": "1.0", "broken": ')
    path.write_bytes(b"\n".join(lines) + b"\n")
    return len(lines)


async def raw_count(url: str) -> int:
    conn = await asyncpg.connect(admin_dsn(url, url.rsplit("/", 1)[-1].split("?")[0]))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM event_keys"))
    finally:
        await conn.close()


async def replay_process(url: str, stream: Path, data_dir: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "KAMWATCH_DATABASE_URL": url, "KAMWATCH_DATA_DIR": str(data_dir)}
    return await asyncio.create_subprocess_exec(
        str(KAMWATCH), "replay", str(stream), "--batch-size", "200",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_sigkill_mid_stream_then_restart_equals_clean_run(server_url: str, tmp_path: Path) -> None:
    stream = tmp_path / "stream.ndjson"
    total = write_stream(stream, accounts=60, per_account=120)
    assert total > 7000

    async with cloned_database(server_url) as clean_url, cloned_database(server_url) as crashed_url:
        clean = await Database.open(Settings(database_url=clean_url))
        await replay_file(Pipeline(clean), stream, batch_size=500)
        await HealthEngine(clean, load_scoring_config(SCORING_PATH)).rescore_pending(
            at(28)
        )  # as `kamwatch replay` does
        expected = await snapshot(clean)
        await clean.close()

        worker = await replay_process(crashed_url, stream, tmp_path)
        stored = 0
        for _ in range(600):  # until part of the stream is committed, at most ~60 s
            stored = await raw_count(crashed_url)
            if stored > 0 or worker.returncode is not None:
                break
            await asyncio.sleep(0.1)
        worker.send_signal(signal.SIGKILL)
        await worker.wait()
        assert worker.returncode == -signal.SIGKILL, "the worker finished before it could be killed"
        assert 0 < await raw_count(crashed_url) < len(expected["event_keys"])

        restarted = await replay_process(crashed_url, stream, tmp_path)
        _, stderr = await restarted.communicate()
        assert restarted.returncode == 0, stderr.decode()

        crashed = await Database.open(Settings(database_url=crashed_url))
        actual = await snapshot(crashed)
        await crashed.close()

    assert actual == expected
