"""The real Kafka broker of the session, and per-test topics and settings on it.

One broker per test run: every test using it is in the ``kafka`` xdist group (``--dist loadgroup`` in the
pytest options), so under pytest-xdist they all run in the one worker process that started it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from services.platform.settings import DEFAULT_TOPICS, Settings
from tests.kafka import RealBroker, create_topics, kafka_home, unavailable_reason

_tests = itertools.count()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealBroker]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    broker = RealBroker.start_new(kafka_home(), tmp_path_factory.mktemp("kafka"))
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
async def kafka_settings(settings: Settings, kafka_broker: RealBroker) -> Settings:
    """The test's settings on the session's broker, with topics of its own (created, 6 partitions each, the DLQ
    topic included) and a consumer group of its own."""
    prefix = f"t{os.getpid()}-{next(_tests)}"
    topics = {stream: f"{prefix}.{topic}" for stream, topic in DEFAULT_TOPICS.items()}
    configured = settings.model_copy(
        update={
            "kafka_bootstrap_servers": kafka_broker.bootstrap,
            "kafka_topics": topics,
            "kafka_dlq_topic": f"{prefix}.dlq",
            "kafka_group_id": f"{prefix}-workers",
            "kafka_retry_backoff_s": 0.5,
            "kafka_lag_interval_s": 0.5,
            "kafka_dlq_lease_s": 6.0,  # a killed worker's dead letters published by another after this
            "kafka_batch_timeout_ms": 100,
            "sweep_interval_s": 3600,
        }
    )
    # Event topics take records up to 4 MiB (some producers do); the DLQ topic keeps the broker's 1 MiB limit.
    await create_topics(kafka_broker.bootstrap, topics.values(), configs={"max.message.bytes": str(4 * 1024 * 1024)})
    await create_topics(kafka_broker.bootstrap, [configured.kafka_dlq_topic])
    return configured
