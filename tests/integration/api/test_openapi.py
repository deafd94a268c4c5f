"""The OpenAPI document: every /v1 operation documents its errors as problem+json and declares API-key auth."""

from __future__ import annotations

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
