"""The OpenAPI document: every /v1 operation documents its errors as problem+json and declares API-key auth."""

from __future__ import annotations

from typing import Any

import httpx


async def test_every_v1_operation_documents_auth_and_errors(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} >= {"http", "apiKey"}
    operations = [
        (path, method, op)
        for path, item in spec["paths"].items()
        if path.startswith("/v1/") and not path.startswith("/v1/slack/")
        for method, op in item.items()
    ]
    assert len(operations) >= 14
    for path, method, op in operations:
        assert op.get("security"), f"{method} {path} declares no auth"
        for status in ("401", "403", "422"):
            assert status in op["responses"], f"{method} {path} lacks {status}"
            assert "application/problem+json" in op["responses"][status]["content"], (method, path, status)
    health = spec["paths"]["/v1/accounts/{account_id}/health"]["get"]
    assert {"200", "304", "404"} <= set(health["responses"])
    assert spec["components"]["schemas"]["AccountHealthOut"]["examples"]
    assert not any(path.startswith(("/widget", "/login", "/accounts/")) for path in spec["paths"])


def _examples(spec: dict[str, Any], content: dict[str, Any]) -> list[Any]:
    """The examples of a request or response body: its own, or those of the model its schema names."""
    found = [content["example"]] if "example" in content else list((content.get("examples") or {}).values())
    schema = content.get("schema") or {}
    for option in [schema, *schema.get("anyOf", [])]:  # an optional body is anyOf [model, null]
        if "$ref" in option:
            found += spec["components"]["schemas"][option["$ref"].rsplit("/", 1)[-1]].get("examples", [])
    return found


async def test_every_operation_is_described_with_examples_and_enums(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()

    for path, item in spec["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            assert op.get("summary"), where
            assert len(op.get("description", "")) > 40, where
            if "requestBody" in op:
                bodies = op["requestBody"]["content"].values()
                assert any(_examples(spec, body) for body in bodies), f"{where}: no request example"
            for status, response in op["responses"].items():
                if status.startswith("2") and status != "204":
                    bodies = list((response.get("content") or {}).values())
                    # an empty 200 (Slack's interactions: the reply goes to its response_url) shows no body
                    assert not bodies or any(_examples(spec, body) for body in bodies), f"{where} {status}: no example"
    schemas = spec["components"]["schemas"]
    assert "relationship.champion_left" in schemas["DriverOut"]["properties"]["code"]["enum"]
    assert schemas["AlertOut"]["properties"]["severity"]["enum"] == ["info", "warning", "critical"]
    level = schemas["AccountHealthOut"]["properties"]["level"]["anyOf"][0]
    assert level["enum"] == ["low", "medium", "high", "critical"]
    assert spec["info"]["description"]


async def test_docs_are_served_from_this_host(client: httpx.AsyncClient) -> None:
    page = (await client.get("/docs")).text
    asset = await client.get("/docs-assets/swagger-ui-bundle.js")

    assert "cdn" not in page.lower()
    assert "/docs-assets/swagger-ui-bundle.js" in page
    assert asset.status_code == 200
    assert len(asset.content) > 100_000
