"""Events generated from the exported JSON Schemas (``schemas.events.event_json_schemas``), through schemathesis'
JSON Schema generator: the schemas become the request body of a one-operation OpenAPI document, whose strategy
draws bodies from them (hypothesis-jsonschema, the usual choice, no longer runs on current Hypothesis)."""

from __future__ import annotations

from typing import Any

import orjson
import schemathesis
from hypothesis import strategies as st

from schemas.events import event_json_schemas


def events_document() -> dict[str, Any]:
    components: dict[str, Any] = {}
    choices = []
    for name, schema in event_json_schemas().items():
        moved = orjson.loads(orjson.dumps(schema).replace(b'"#/$defs/', b'"#/components/schemas/'))
        components.update(moved.pop("$defs", {}))
        title = moved.get("title", name)
        components[title] = moved
        choices.append({"$ref": f"#/components/schemas/{title}"})
    body = {"required": True, "content": {"application/json": {"schema": {"oneOf": choices}}}}
    operation = {"requestBody": body, "responses": {"200": {"description": "stored"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "kamwatch events", "version": "1"},
        "paths": {"/events": {"post": operation}},
        "components": {"schemas": components},
    }


def events() -> st.SearchStrategy[Any]:
    """Documents valid against one of the event schemas (and so, mostly, what the parser accepts)."""
    operation = schemathesis.openapi.from_dict(events_document())["/events"]["POST"]
    return operation.as_strategy().map(lambda case: case.body)
