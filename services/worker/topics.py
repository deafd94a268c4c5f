"""The worker's topics checked at start: the event topics and the DLQ topic exist, or are created (a setting)."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from services.platform.settings import Settings

log = logging.getLogger(__name__)


class KafkaSetupError(RuntimeError):
    """The cluster lacks what the worker needs, and the worker may not (or could not) create it."""


async def ensure_topics(settings: Settings) -> list[str]:
    """Check that every topic the worker reads or writes exists; with KAMWATCH_KAFKA_CREATE_TOPICS, create the
    missing ones with the cluster's default partitions and replication. Returns the topics created."""
    wanted = list(dict.fromkeys([*settings.kafka_topics.values(), settings.kafka_dlq_topic]))
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in wanted if topic not in existing]
        if not missing:
            return []
        if not settings.kafka_create_topics:
            raise KafkaSetupError(
                f"Kafka topics missing on {settings.kafka_bootstrap_servers}: {', '.join(missing)} "
                "(create them, or set KAMWATCH_KAFKA_CREATE_TOPICS=true)"
            )
        partitions, replication = await _cluster_defaults(admin)
        response = await admin.create_topics([NewTopic(topic, partitions, replication) for topic in missing])
        refused = []
        for topic, code, *rest in response.topic_errors:
            if code and not isinstance(for_code(code)(), TopicAlreadyExistsError):  # a worker beside us made it
                refused.append(f"{topic}: {for_code(code).__name__} {rest[0] if rest else ''}".strip())
        if refused:
            raise KafkaSetupError(f"could not create Kafka topics: {'; '.join(refused)}")
        log.info("created Kafka topics %s (%d partitions, replication %d)", ", ".join(missing), partitions, replication)
        return missing
    finally:
        await admin.close()


async def _cluster_defaults(admin: AIOKafkaAdminClient) -> tuple[int, int]:
    """The cluster's ``num.partitions`` and ``default.replication.factor``, as a broker reports them."""
    cluster = await admin.describe_cluster()
    broker = str(cluster["brokers"][0]["node_id"])
    names = {"num.partitions": None, "default.replication.factor": None}
    (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, broker, names)])
    values = {
        entry["config_names"]: int(entry["config_value"])
        for resource in response.to_object()["resources"]
        for entry in resource["config_entries"]
    }
    return values.get("num.partitions", 1), values.get("default.replication.factor", 1)
