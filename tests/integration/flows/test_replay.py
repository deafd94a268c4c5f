"""Replaying NDJSON files (plain or gzip) through the pipeline: state, blank and bad lines, idempotency."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text

from ingestion.pipeline import BatchResult
from services.flows.ingest import Pipeline
from services.flows.replay import ReplayStats, replay_file
from services.platform.database import Database
from services.platform.settings import Settings
from tests.dbutil import cloned_database, snapshot
from tests.events import at, encode, event

BAD_JSON = b'{"specversion": "1.0", "id": '
BAD_EVENT = encode(event("payment", "acme", at(3), {"invoice_id": "I1", "status": "lost"}, id="bad-payment"))


def history_lines() -> list[bytes]:
    """A file's lines: a mixed history of three accounts, blank lines, a redelivery and two bad lines."""
    lines: list[bytes] = []
    for n in range(12):
        subject = ("acme", "globex", "initech")[n % 3]
        usage = {"quantity": f"{n}.5", "user_id": f"u{n % 4}"}
        lines.append(encode(event("usage", subject, at(1 + n, hour=n), usage, id=f"usage-{n}")))
        if n % 3 == 0:
            status = ("opened", "escalated", "resolved", "reopened")[n // 3]
            ticket = {"ticket_id": "T1", "status": status, "priority": "high"}
            lines.append(encode(event("support_ticket", subject, at(2 + n), ticket, id=f"ticket-{n}")))
    lines[3:3] = [b"", BAD_JSON, b"   \t"]  # a blank line, a broken one, a whitespace-only one
    lines.insert(8, lines[0])  # a redelivery within the file
    lines.insert(11, BAD_EVENT)
    payment = {"invoice_id": "I1", "status": "failed", "amount": "10", "currency": "EUR", "due_date": "2026-03-31"}
    lines.append(encode(event("payment", "acme", at(20), payment, id="payment-1")))
    lines.append(encode(event("kam", "kam-1", at(21), {"name": "Kim", "email": "kim@example.com"}, id="kam-1")))
    return lines


def write(path: Path, lines: list[bytes], *, gzipped: bool = False) -> Path:
    """The lines as a file; the last but one ends with CRLF, the last one with no newline at all."""
    content = b"\n".join(lines[:-1]) + b"\r\n" + lines[-1]
    path.write_bytes(gzip.compress(content) if gzipped else content)
    return path


def line_number(lines: list[bytes], line: bytes) -> int:
    return lines.index(line) + 1


@asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[Database]:
    """A second migrated database, dropped on exit."""
    async with cloned_database(server_url) as url:
        db = await Database.open(Settings(database_url=url, db_pool_size=2))
        try:
            yield db
        finally:
            await db.close()


async def fetch(db: Database, query: str) -> list[tuple[Any, ...]]:
    async with db.unit_of_work() as conn:
        return [tuple(row) for row in await conn.execute(text(query))]


async def test_a_gzipped_file_replays_to_the_same_state_as_the_plain_one(
    db: Database, server_url: str, tmp_path: Path
) -> None:
    lines = history_lines()
    plain = write(tmp_path / "history.ndjson", lines)
    gzipped = write(tmp_path / "history.ndjson.gz", lines, gzipped=True)
    assert gzipped.read_bytes()[:2] == b"\x1f\x8b"

    plain_stats = await replay_file(Pipeline(db), plain, batch_size=4)
    async with fresh_database(server_url) as other:
        gzipped_stats = await replay_file(Pipeline(other), gzipped, batch_size=4)
        gzipped_state = await snapshot(other)
    plain_state = await snapshot(db)

    assert gzipped_stats == plain_stats
    plain_letters, gzipped_letters = plain_state.pop("dead_letters"), gzipped_state.pop("dead_letters")
    assert gzipped_state == plain_state
    assert len(plain_state["raw_events"]) == plain_stats.accepted > 0
    # the same letters, told apart by the file name only
    assert [(i, o.replace(".ndjson.gz:", ".ndjson:"), *rest) for i, o, *rest in gzipped_letters] == plain_letters


async def test_blank_lines_are_skipped_and_bad_lines_are_dead_lettered_without_stopping(
    db: Database, tmp_path: Path
) -> None:
    lines = history_lines()
    path = write(tmp_path / "history.ndjson", lines)
    batches: list[BatchResult] = []

    stats = await replay_file(Pipeline(db), path, batch_size=5, on_batch=batches.append)

    non_blank = [line for line in lines if line.strip()]
    valid = len(non_blank) - 2
    assert stats == ReplayStats(lines=len(non_blank), accepted=valid - 1, duplicates=1, rejected=2)
    assert [len(batch.results) for batch in batches] == [5] * (len(non_blank) // 5) + [len(non_blank) % 5] * (
        len(non_blank) % 5 > 0
    )
    letters = await fetch(
        db, "SELECT ingress, origin, field, raw FROM dead_letters ORDER BY split_part(origin, ':', 3)::int"
    )
    assert [(i, o, f, bytes(raw)) for i, o, f, raw in letters] == [
        # the line as it was, less its surrounding whitespace
        ("replay", f"file:history.ndjson:{line_number(lines, BAD_JSON)}", None, BAD_JSON.strip()),
        ("replay", f"file:history.ndjson:{line_number(lines, BAD_EVENT)}", "data.status", BAD_EVENT),
    ]
    # everything after the bad lines made it, up to the CRLF-ended line and the last one, without newline
    stored = {row[0] for row in await fetch(db, "SELECT event_id FROM raw_events")}
    assert {"usage-11", "ticket-9", "payment-1", "kam-1"} <= stored
    assert len(stored) == valid - 1
    assert await fetch(db, "SELECT name FROM kams") == [("Kim",)]


async def test_replaying_the_same_file_twice_accepts_everything_once(db: Database, tmp_path: Path) -> None:
    path = write(tmp_path / "history.ndjson", history_lines())
    pipeline = Pipeline(db)

    first = await replay_file(pipeline, path, batch_size=3, concurrency=3)
    state_after_first = await snapshot(db)
    second = await replay_file(pipeline, path, batch_size=7)

    assert first.accepted > 0
    assert second == ReplayStats(
        lines=first.lines, accepted=0, duplicates=first.accepted + first.duplicates, rejected=first.rejected
    )
    assert await snapshot(db) == state_after_first  # nothing changed, not even the dead letters
    assert await fetch(db, "SELECT count(*) FROM dead_letters") == [(first.rejected,)]
