"""HTTP API (FastAPI): event ingestion and health probes; later issues add the CRM widget endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from ingestion.parsing import InboundRecord
from ingestion.pipeline import BatchResult
from services.database import Database
from services.pipeline import Pipeline
from services.problems import Problem, install_problem_handlers
from services.settings import Settings

NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-seq", "application/ndjson")


class EventResultOut(BaseModel):
    index: int = Field(description="Position of the event in the request body.")
    status: Literal["accepted", "duplicate", "rejected"]
    source: str | None = None
    id: str | None = None
    reason: str | None = Field(default=None, description="Why the event was rejected.")
    field: str | None = Field(default=None, description="Dotted path of the offending attribute.")


class IngestResponse(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    results: list[EventResultOut]


_EXAMPLE_EVENT = {
    "specversion": "1.0",
    "id": "usage-000123",
    "source": "product/telemetry",
    "type": "kamwatch.usage.v1",
    "subject": "acme-corp",
    "time": "2026-11-20T09:30:00+01:00",
    "data": {"metric": "activity", "quantity": 3, "user_id": "u-42"},
}


_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": "A CloudEvents 1.0 event (structured mode), a JSON array of them, or NDJSON (one per line).",
    "content": {
        "application/json": {
            "schema": {"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]},
            "example": _EXAMPLE_EVENT,
        },
        "application/x-ndjson": {"schema": {"type": "string"}},
    },
}


def split_body(body: bytes, content_type: str) -> list[InboundRecord]:
    """One event, a JSON array of events, or NDJSON, as raw records for the pipeline."""
    if content_type.split(";")[0].strip().lower() in NDJSON_TYPES:
        return [InboundRecord(line.strip()) for line in body.splitlines() if line.strip()]
    stripped = body.lstrip()
    if stripped.startswith(b"["):
        try:
            items = orjson.loads(stripped)
        except orjson.JSONDecodeError as error:
            raise Problem(422, "Unprocessable Content", f"invalid JSON: {error}") from None
        return [InboundRecord(orjson.dumps(item)) for item in items]
    return [InboundRecord(body)]


def build_app(settings: Settings, db: Database | None = None) -> FastAPI:
    """The API application; it opens (and closes) its own database unless given one."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = db or await Database.open(settings)
        app.state.db = database
        app.state.pipeline = Pipeline(database)
        try:
            yield
        finally:
            if db is None:
                await database.close()

    app = FastAPI(
        title="kamwatch",
        version="1",
        summary="Key-account health: churn early warning for Key Account Managers.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)

    @app.post(
        "/v1/events",
        response_model=IngestResponse,
        tags=["ingestion"],
        summary="Ingest events (one CloudEvent, a JSON array, or NDJSON)",
        responses={422: {"description": "A single event, or the body, is invalid (problem+json, names the field)"}},
        openapi_extra={"requestBody": _REQUEST_BODY},
    )
    async def ingest_events(request: Request) -> IngestResponse:
        body = await request.body()
        if len(body) > settings.http_max_body_bytes:
            raise Problem(413, "Content Too Large", f"body exceeds {settings.http_max_body_bytes} bytes")
        records = split_body(body, request.headers.get("content-type", "application/json"))
        if not records:
            raise Problem(422, "Unprocessable Content", "no event in the request body")
        pipeline: Pipeline = request.app.state.pipeline
        result = await pipeline.ingest(records, ingress="http")
        single = len(records) == 1 and not body.lstrip().startswith(b"[")
        if single and result.results[0].status == "rejected":
            rejected = result.results[0]
            raise Problem(422, "Invalid event", rejected.reason, field=rejected.field)
        return _response(result)

    @app.get("/healthz", tags=["operations"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Readiness: the database answers")
    async def readyz(request: Request) -> JSONResponse:
        db: Database = request.app.state.db
        try:
            async with db.unit_of_work() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as error:  # any failure means not ready; say which
            return JSONResponse({"status": "unavailable", "database": str(error)}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    return app


def _response(result: BatchResult) -> IngestResponse:
    return IngestResponse(
        accepted=result.count("accepted"),
        duplicates=result.count("duplicate"),
        rejected=result.count("rejected"),
        results=[
            EventResultOut(index=i, status=r.status, source=r.source, id=r.id, reason=r.reason, field=r.field)
            for i, r in enumerate(result.results)
        ],
    )
