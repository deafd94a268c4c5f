"""`kamwatch worker` on a real Kafka broker: what producers actually send (every compression codec, both
CloudEvents modes as the official SDK makes them) is stored, and what is poison (or conflicts with a stored
event) is dead-lettered once, its partition moving on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from sqlalchemy import text

from ingestion.parsing import parse_event
from ingestion.pipeline import CONFLICT_REASON
from services.platform.database import Database
from services.platform.settings import Settings
from tests.events import at, encode, event
from tests.kafka import Record, produce, read_topic
from tests.processes import kamwatch_service, until

pytestmark = [pytest.mark.kafka, pytest.mark.processes, pytest.mark.xdist_group("kafka")]

CODECS = (None, "gzip", "snappy", "lz4", "zstd")
ONLY_INGEST = {"KAMWATCH_WORKER_EVALUATES": "false"}


async def rows(db: Database, query: str) -> list[tuple[Any, ...]]:
    async with db.unit_of_work() as conn:
        return [tuple(row) for row in await conn.execute(text(query))]


async def count(db: Database, query: str) -> int:
    ((value,),) = await rows(db, query)
    return int(value)


def sdk_message(mode: str, event_id: str, data: dict[str, Any]) -> Record:
    ticket = CloudEvent(
        {
            "id": event_id,
            "source": "helpdesk",
            "type": "kamwatch.support_ticket.v1",
            "subject": "acme",
            "time": datetime(2026, 3, 2, 12, tzinfo=UTC),
            "datacontenttype": "application/json",
            "partitionkey": "acme",
        },
        data,
    )
    message: KafkaMessage = (to_binary if mode == "binary" else to_structured)(ticket, JSONFormat())
    key = message.key.encode() if isinstance(message.key, str) else message.key
    return Record(message.value, key, list(message.headers.items()))


async def test_every_codec_and_both_cloudevents_modes_are_stored(
    kafka_settings: Settings, db: Database, tmp_path: Path
) -> None:
    topics = kafka_settings.kafka_topics
    bootstrap = kafka_settings.kafka_bootstrap_servers
    expected: set[str] = set()
    for codec in CODECS:
        batch = [event("usage", f"acc-{n}", at(2), {"quantity": n}, id=f"{codec}-{n}") for n in range(12)]
        expected |= {document["id"] for document in batch}
        keyed = [Record(encode(document), document["subject"].encode()) for document in batch]
        await produce(bootstrap, topics["usage"], keyed, compression=codec)
    ticket = {"ticket_id": "T1", "status": "opened", "priority": "urgent"}
    modes = [sdk_message("binary", "ticket-binary", ticket), sdk_message("structured", "ticket-structured", ticket)]
    bad = sdk_message("binary", "ticket-bad", {"status": "opened"})  # no ticket_id
    await produce(bootstrap, topics["support_tickets"], [*modes, bad])
    expected |= {"ticket-binary", "ticket-structured"}

    async with kamwatch_service(kafka_settings, "worker", env=ONLY_INGEST, stderr=tmp_path / "worker.log"):
        await until(
            lambda: count(db, "SELECT count(*) FROM raw_events"), lambda n: n >= len(expected), timeout_s=90,
            what="events stored",
        )  # fmt: skip
        dlq = await until(
            lambda: read_topic(bootstrap, kafka_settings.kafka_dlq_topic), lambda r: len(r) >= 1, timeout_s=30,
            what="the dead letter on the DLQ topic",
        )  # fmt: skip

    assert {event_id for (event_id,) in await rows(db, "SELECT event_id FROM raw_events")} == expected
    payloads = dict(await rows(db, "SELECT event_id, payload::text FROM raw_events WHERE event_id LIKE 'ticket-%'"))
    binary, structured = (parse_event(payloads[f"ticket-{mode}"]) for mode in ("binary", "structured"))
    assert binary.model_copy(update={"id": "x"}) == structured.model_copy(update={"id": "x"})
    # the bad binary-mode record: dead-lettered with its attributes (headers) and key, on the topic as in the table
    (letter,) = dlq
    headers = dict(letter.headers)
    assert headers["ce_id"] == b"ticket-bad"
    assert headers["ce_type"] == b"kamwatch.support_ticket.v1"
    assert headers["kamwatch-dlq-field"] == b"data.ticket_id"
    assert (letter.key, letter.value) == (b"acme", bad.value)
    assert await rows(db, "SELECT field, record_key FROM dead_letters") == [("data.ticket_id", b"acme")]


MiB = 1024 * 1024


async def test_poison_records_are_dead_lettered_once_and_their_partition_moves_on(
    kafka_settings: Settings, db: Database, tmp_path: Path
) -> None:
    bootstrap = kafka_settings.kafka_bootstrap_servers
    topic = kafka_settings.kafka_topics["usage"]
    huge = b'{"specversion": "1.0", "filler": "' + b"x" * (3 * MiB // 2)  # invalid JSON over the DLQ's 1 MiB
    poison = {
        "invalid JSON": Record(b"{not json", b"acc-1"),
        "an array": Record(b"[1, 2]", b"acc-1"),
        "a number": Record(b"42", b"acc-1"),
        "a string": Record(b'"usage"', b"acc-1"),
        "a tombstone": Record(None, b"acc-1"),
        "no key": Record(encode(event("weather", "acc-1", at(3))), None),
        "too large for the DLQ": Record(huge, b"acc-1"),
        "a conflict": Record(encode(event("usage", "acc-1", at(3), {"quantity": 99}, id="good-0")), b"acc-1"),
    }
    good = [encode(event("usage", "acc-1", at(3), id=f"good-{n}")) for n in range(len(poison) + 1)]
    stream: list[Record] = []
    for n, record in enumerate(poison.values()):  # each poison record between two good ones, on one partition
        stream += [Record(good[n], b"acc-1", partition=0), Record(record.value, record.key, partition=0)]
    stream.append(Record(good[-1], None, partition=0))  # a good event without a key
    await produce(bootstrap, topic, stream, max_request_size=4 * MiB)

    worker_log = tmp_path / "worker.log"
    async with kamwatch_service(kafka_settings, "worker", env=ONLY_INGEST, stderr=worker_log) as worker:
        await until(
            lambda: count(db, "SELECT count(*) FROM raw_events"), lambda n: n == len(good), timeout_s=90,
            what="every good event stored, the last one after every poison record",
        )  # fmt: skip
        dlq = await until(
            lambda: read_topic(bootstrap, kafka_settings.kafka_dlq_topic), lambda r: len(r) >= len(poison),
            timeout_s=30, what="the dead letters on the DLQ topic",
        )  # fmt: skip
        await until(
            lambda: count(db, "SELECT count(*) FROM dead_letters WHERE published_at IS NULL"), lambda n: n == 0,
            timeout_s=10, what="dead letters not marked published",
        )  # fmt: skip
        rss = psutil.Process(worker.process.pid).memory_info().rss

    letters = await rows(db, "SELECT id, reason, raw, record_key FROM dead_letters ORDER BY id")
    assert [bytes(raw) for _, _, raw, _ in letters] == [r.value or b"" for r in poison.values()]
    reasons = [reason for _, reason, _, _ in letters]
    assert reasons[0].startswith("invalid JSON")
    assert reasons[1:4] == ["an event must be a JSON object"] * 3
    assert reasons[4] == "empty message"
    assert reasons[5].startswith("unknown event type")
    assert reasons[6].startswith("invalid JSON")
    assert reasons[7] == CONFLICT_REASON  # good-0 again with other content: the first version kept

    assert len(dlq) == len(poison)  # each once: no rewind ever published one again
    by_id = {int(dict(record.headers)["kamwatch-dead-letter-id"]): record for record in dlq}
    assert set(by_id) == {letter_id for letter_id, *_ in letters}
    for letter_id, _, raw, key in letters:
        record, headers = by_id[letter_id], dict(by_id[letter_id].headers)
        assert record.key == (bytes(key) if key is not None else None)
        assert headers["kamwatch-source-topic"] == topic.encode()
        if len(raw) < MiB:
            assert record.value == bytes(raw)
            assert "kamwatch-dlq-truncated-from" not in headers
        else:  # truncated to fit, the full size given and the whole record kept in the table
            assert headers["kamwatch-dlq-truncated-from"] == str(len(raw)).encode()
            assert 0 < len(record.value) <= kafka_settings.kafka_dlq_max_bytes
            assert bytes(raw).startswith(record.value)
    assert rss < 1024 * MiB, f"worker RSS {rss / MiB:.0f} MiB"
