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


def test_asyncapi_follows_configured_topics() -> None:
    topics = {**DEFAULT_TOPICS, "usage": "acme.product-usage"}
    document = asyncapi_document(Settings(kafka_topics=topics))
    assert "acme.product-usage" in {channel["address"] for channel in document["channels"].values()}
