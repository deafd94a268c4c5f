from typing import Any

from services.platform.settings import DEFAULT_TOPICS, Settings
from services.worker.asyncapi import STREAM_EVENTS, asyncapi_document


def test_asyncapi_describes_every_topic_with_its_event_schemas() -> None:
    document = asyncapi_document(Settings())
    channels = {channel["address"]: channel for channel in document["channels"].values()}
    assert set(channels) == {*DEFAULT_TOPICS.values(), "kamwatch.dlq"}

    messages = document["components"]["messages"]
    schemas = document["components"]["schemas"]
    for stream, topic in DEFAULT_TOPICS.items():
        (reference,) = channels[topic]["messages"].values()
        payload = messages[reference["$ref"].rsplit("/", 1)[-1]]["payload"]
        names = [option["$ref"].rsplit("/", 1)[-1] for option in payload["oneOf"]]
        assert names == [model.__name__ for model in STREAM_EVENTS[stream]]
        for name in names:
            assert {"specversion", "id", "source", "type", "subject", "time"} <= set(schemas[name]["required"])
    assert schemas["PaymentData"]["required"] == ["invoice_id", "status", "amount", "currency", "due_date"]


def test_asyncapi_names_the_key_the_topic_of_each_type_and_the_dead_letter_headers() -> None:
    document = asyncapi_document(Settings())
    channels = {channel["address"]: channel for channel in document["channels"].values()}
    messages = document["components"]["messages"]

    def message(topic: str) -> dict[str, Any]:
        (reference,) = channels[topic]["messages"].values()
        found: dict[str, Any] = messages[reference["$ref"].rsplit("/", 1)[-1]]
        return found

    # KAM directory events travel on the accounts topic
    assert "`kamwatch.kam.v1`" in channels["kamwatch.accounts"]["description"]
    assert "`kamwatch.account.v1`" in channels["kamwatch.accounts"]["description"]
    for topic in DEFAULT_TOPICS.values():
        assert message(topic)["bindings"]["kafka"]["key"]["type"] == "string"
    dead = message("kamwatch.dlq")
    assert set(dead["headers"]["properties"]) == {
        "kamwatch-dlq-reason",
        "kamwatch-dlq-field",
        "kamwatch-source-topic",
        "kamwatch-source-partition",
        "kamwatch-source-offset",
        "kamwatch-dead-letter-id",
        "kamwatch-dlq-truncated-from",
    }


def test_asyncapi_follows_configured_topics() -> None:
    topics = {**DEFAULT_TOPICS, "usage": "acme.product-usage"}
    document = asyncapi_document(Settings(kafka_topics=topics))
    assert "acme.product-usage" in {channel["address"] for channel in document["channels"].values()}
