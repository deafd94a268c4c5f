"""HTTP API (FastAPI): event ingestion, the /v1 account and alert endpoints, the widget and portfolio pages."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import fastapi_offline
from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alerts.playbook import load_playbook
from health_engine.access import Principal
from health_engine.config import load_scoring_config
from health_engine.quarantine import quarantined_count
from ingestion.parsing import InboundRecord
from ingestion.pipeline import BatchResult
from services.api import v1 as api_v1
from services.api.auth import FailedAuthLimit, KeyCache, require
from services.api.fastpath import HealthFastPath
from services.api.pages import routes as api_pages
from services.api.pages import widget as api_widget
from services.api.problems import Problem, install_problem_handlers, problem_response
from services.api.queries import open_read_pool
from services.api.slack_actions import slack_router
from services.flows.alerting import build_alerting
from services.flows.evaluation import HealthEngine
from services.flows.ingest import Pipeline, time_window
from services.flows.notifying import alerts_config
from services.platform.clock import utc_now
from services.platform.currency import exchange_rates
from services.platform.database import Database
from services.platform.metrics import Metrics
from services.platform.observability import sample_forever
from services.platform.runtime import tune_gc
from services.platform.settings import Settings

NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-seq", "application/ndjson")


class EventResultOut(BaseModel):
    index: int = Field(description="Position of the event in the request body.")
    status: Literal["accepted", "duplicate", "conflict", "rejected"] = Field(
        description="`conflict`: an event with this source and id was stored before with other content; the "
        "first version is kept and this one recorded as a dead letter."
    )
    source: str | None = None
    id: str | None = None
    reason: str | None = Field(default=None, description="Why the event was rejected.")
    field: str | None = Field(default=None, description="Dotted path of the offending attribute.")


class IngestResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "accepted": 1,
                    "duplicates": 0,
                    "rejected": 1,
                    "results": [
                        {"index": 0, "status": "accepted", "source": "product/telemetry", "id": "usage-000123"},
                        {
                            "index": 1,
                            "status": "rejected",
                            "source": "billing",
                            "id": "p-1",
                            "reason": "data.invoice_id: missing required attribute",
                            "field": "data.invoice_id",
                        },
                    ],
                }
            ]
        }
    )

    accepted: int
    duplicates: int
    conflicts: int
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
            # An array may hold anything: each item gets its own result, invalid ones `rejected` with the reason.
            "schema": {"oneOf": [{"type": "object"}, {"type": "array", "items": {}}]},
            "example": _EXAMPLE_EVENT,
        },
        "application/x-ndjson": {"schema": {"type": "string"}},
    },
}


def split_body(body: bytes, content_type: str) -> list[InboundRecord]:
    """One event, a JSON array of events, or NDJSON, as raw records for the pipeline: each item's bytes as
    received, so that one bad item is rejected alone and the others are stored as they were sent."""
    if content_type.split(";")[0].strip().lower() in NDJSON_TYPES:
        return [InboundRecord(line.strip()) for line in body.splitlines() if line.strip()]
    stripped = body.lstrip()
    if stripped.startswith(b"["):
        try:
            text = stripped.decode()
        except UnicodeDecodeError as error:
            raise Problem(400, "Bad Request", f"the body is not UTF-8 (byte {error.start})") from None
        return [InboundRecord(item.encode()) for item in array_items(text)]
    return [InboundRecord(body)]


_ITEMS = json.JSONDecoder(parse_int=len, parse_float=len, parse_constant=len)
_SPACE = re.compile(r"[ \t\n\r]*")
# A token of a JSON text for finding where a value ends without decoding it: a string, a bracket, or a run of
# anything else.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]|[^"\[\]{},]+|,')


def array_items(text: str) -> list[str]:
    """The text of each item of a JSON array, as written. An item that is not valid JSON (or nests too deep
    for the decoder) is delimited by its brackets alone, and left for the parser to reject with the reason."""
    items: list[str] = []
    position = _SPACE.match(text, 1).end()  # type: ignore[union-attr]  # the pattern matches the empty string
    if text.startswith("]", position):
        return _end_of_array(text, position + 1, items)
    while True:
        try:
            _, end = _ITEMS.raw_decode(text, position)
        except (ValueError, RecursionError):
            end = _value_end(text, position)
        items.append(text[position:end])
        position = _SPACE.match(text, end).end()  # type: ignore[union-attr]
        if text.startswith("]", position):
            return _end_of_array(text, position + 1, items)
        if not text.startswith(",", position):
            raise Problem(422, "Unprocessable Content", f"invalid JSON array: expected , or ] at character {position}")
        position = _SPACE.match(text, position + 1).end()  # type: ignore[union-attr]


def _end_of_array(text: str, position: int, items: list[str]) -> list[str]:
    if text[position:].strip(" \t\n\r"):
        raise Problem(422, "Unprocessable Content", f"invalid JSON array: extra data at character {position}")
    return items


def _value_end(text: str, position: int) -> int:
    """Where the value starting at ``position`` ends: its brackets balanced, strings skipped; or at the next
    comma or closing bracket of the array for a scalar."""
    depth = 0
    for token in _TOKEN.finditer(text, position):
        first = token.group()[0]
        if first in "[{":
            depth += 1
        elif first in "]}":
            if depth == 0:
                return token.start()
            depth -= 1
        elif first == "," and depth == 0:
            return token.start()
        if depth == 0 and first in "]}":
            return token.end()
    raise Problem(422, "Unprocessable Content", "invalid JSON array: an item is not closed")


def build_app(
    settings: Settings,
    db: Database | None = None,
    *,
    clock: Callable[[], datetime] = utc_now,
    key_cache_seconds: float = 5.0,
    metrics: Metrics | None = None,
    health_fast_path: bool = True,
) -> FastAPI:
    """The API application; it opens (and closes) its own database unless given one.

    ``key_cache_seconds``: how long a checked API key is trusted without asking the database again (a key
    revoked from another process stops working after at most that long). Ingested events are scored and
    their alerts opened at once, as in the worker. ``health_fast_path``: answer the plain polling requests of
    GET /v1/accounts/{id}/health without the framework's routing (services/api/fastpath.py; same answers).
    """
    metrics = metrics or Metrics.create()
    redact_access_log()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = db or await Database.open(settings)
        app.state.db = database
        alerting = build_alerting(settings, notify="send", metrics=metrics)
        engine = HealthEngine.from_settings(database, settings, alerting, metrics=metrics)
        app.state.pipeline = Pipeline(
            database, clock=clock, engine=engine, metrics=metrics, window=time_window(settings)
        )
        app.state.read_pool = await open_read_pool(database, settings.db_pool_size)
        sampler = asyncio.create_task(sample_forever(database, metrics, clock, app.state.rates))
        try:
            yield
        finally:
            sampler.cancel()
            await app.state.read_pool.close()
            if db is None:
                await database.close()

    app = FastAPI(
        title="kamwatch",
        version="1",
        summary="Key-account health: churn early warning for Key Account Managers.",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_tags=OPENAPI_TAGS,
    )
    serve_docs_offline(app)
    app.state.settings = settings
    app.state.clock = clock
    app.state.metrics = metrics
    app.state.scoring = load_scoring_config(settings.scoring_config)
    app.state.levels = app.state.scoring.levels
    app.state.alert_rules = alerts_config(settings)
    app.state.rates = exchange_rates(settings)
    app.state.playbook = load_playbook(settings.playbook)
    app.state.key_cache = KeyCache(key_cache_seconds)
    app.state.failed_auth_limit = FailedAuthLimit(settings.auth_failure_limit)
    ingest_slots = asyncio.Semaphore(settings.http_ingest_concurrency)
    install_problem_handlers(app)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # As problems.py, but keeping the headers the error carries (`Allow` on a 405, RFC 9110).
        response = problem_response(exc.status_code, str(exc.detail), instance=request.url.path)
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            response.headers["Allow"] = allowed_methods(request)
        return response

    if health_fast_path:
        app.add_middleware(HealthFastPath)  # added first: innermost, inside CORS and the request metrics
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "If-None-Match", "Accept-Language"],
            expose_headers=["ETag"],
            max_age=600,
        )
    app.include_router(api_v1.router)
    app.include_router(api_pages.router)
    app.include_router(api_widget.router)
    # Slack buttons authenticate by Slack's request signature (settings.slack_signing_secret), not an API key.
    app.include_router(slack_router(settings))

    @app.post(
        "/v1/events",
        response_model=IngestResponse,
        tags=["ingestion"],
        summary="Ingest events (one CloudEvent, a JSON array, or NDJSON)",
        responses={
            **api_v1.AUTH_ERRORS,
            400: api_v1.problem_doc("The body is not UTF-8, or its Content-Length is not a number"),
            409: api_v1.problem_doc("A single event whose source and id were stored before with other content"),
            413: api_v1.problem_doc(
                "The body is larger than KAMWATCH_HTTP_MAX_BODY_BYTES, or holds more than KAMWATCH_HTTP_MAX_EVENTS"
            ),
            422: api_v1.problem_doc("A single event, or the body, is invalid (problem+json, names the field)"),
        },
        openapi_extra={"requestBody": _REQUEST_BODY},
    )
    async def ingest_events(request: Request, _: Principal = Depends(require("ingest"))) -> IngestResponse:
        """One CloudEvent, a JSON array of them, or NDJSON. Each event is validated, claimed by its (source, id) (a
        duplicate is acknowledged as such), stored and its account rescored before the answer; a single invalid
        event answers 422 naming the field, a batch answers a result per event."""
        # A few requests at a time: the others wait with their bodies still in the network buffers.
        async with ingest_slots:
            body = await read_body(request, settings.http_max_body_bytes)
            content_type = request.headers.get("content-type", "application/json")
            records = split_body(body, content_type)
            is_array = body.lstrip().startswith(b"[")
            del body
            if not records:
                raise Problem(422, "Unprocessable Content", "no event in the request body")
            if len(records) > settings.http_max_events:
                raise Problem(
                    413,
                    "Content Too Large",
                    f"{len(records)} events in one request; at most {settings.http_max_events} (send several requests)",
                )
            pipeline: Pipeline = request.app.state.pipeline
            result = await pipeline.ingest(records, ingress="http")
            single = len(records) == 1 and not is_array
            first = result.results[0]
            if single and first.status == "rejected":
                raise Problem(422, "Invalid event", first.reason, field=first.field)
            if single and first.status == "conflict":
                raise Problem(409, "Conflict", first.reason, field=first.field)
            return _response(result)

    app.add_middleware(RequestMetrics, metrics=metrics)

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"example": METRICS_EXAMPLE}}}},
    )
    async def metrics_endpoint(request: Request) -> Response:
        """Prometheus exposition of every kamwatch metric (text, or OpenMetrics by Accept)."""
        body, content_type = metrics.exposition(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    @app.get(
        "/healthz",
        tags=["operations"],
        summary="Liveness",
        responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
    )
    async def healthz() -> dict[str, str]:
        """The process answers (no dependency checked)."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: the database answers; degraded when accounts are quarantined",
        responses={
            200: {
                "content": {
                    "application/json": {
                        "examples": {
                            "ok": {"value": {"status": "ok", "database": "ok"}},
                            "degraded": {"value": {"status": "degraded", "database": "ok", "quarantined_accounts": 2}},
                        }
                    }
                }
            },
            503: {
                "description": "The database does not answer",
                "content": {"application/json": {"example": {"status": "unavailable", "database": "timeout"}}},
            },
        },
    )
    async def readyz(request: Request) -> JSONResponse:
        """The database answers: 200 (status degraded while accounts are quarantined), else 503 with the error."""
        db: Database = request.app.state.db
        try:
            async with db.transaction() as conn:
                quarantined = await quarantined_count(conn)
        except Exception as error:  # any failure means not ready; say which
            return JSONResponse({"status": "unavailable", "database": str(error)}, status_code=503)
        if quarantined:
            return JSONResponse({"status": "degraded", "database": "ok", "quarantined_accounts": quarantined})
        return JSONResponse({"status": "ok", "database": "ok"})

    return app


class RequestMetrics:
    """Requests by route template (bounded: never the raw path with its ids), method and status, and their
    latency. Plain ASGI: Starlette's ``@app.middleware("http")`` costs a task and a stream per request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.http_requests_total.labels(route=route, method=method, status=str(status)).inc()
            self.metrics.http_request_seconds.labels(route=route, method=method).observe(time.perf_counter() - started)


DOCS_ASSETS = "/docs-assets"
METRICS_EXAMPLE = """# HELP kamwatch_arr_at_risk Annual recurring revenue of the accounts at high or critical risk...
# TYPE kamwatch_arr_at_risk gauge
kamwatch_arr_at_risk{currency="EUR",tier="strategic"} 960000.0
"""

API_DESCRIPTION = """The health of key accounts for CRMs, widgets and integrations.

Authenticate with an API key (`kamwatch apikey create`) in `Authorization: Bearer …` or `X-API-Key`. Errors are
RFC 9457 problem+json; a 422 names the offending `field`. Messages (driver texts, alert titles) come in the
caller's language: `?locale=fr` or `Accept-Language`. Risk levels are `low`, `medium`, `high`, `critical`;
every driver carries a stable `code` (`usage.drop`, `relationship.champion_left`…)."""

OPENAPI_TAGS = [
    {"name": "accounts", "description": "One account: health, history, timeline, override, post-mortem."},
    {"name": "portfolio", "description": "Sums across the accounts a key may see; losses and their lead times."},
    {"name": "alerts", "description": "Alerts and their lifecycle: acknowledge, snooze, resolve, feedback."},
    {"name": "widget", "description": "Tokens for embedding an account's widget in a CRM."},
    {"name": "ingestion", "description": "Events in (CloudEvents 1.0, structured mode)."},
    {"name": "operations", "description": "Liveness, readiness and Prometheus metrics (no key needed)."},
]


def serve_docs_offline(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc from the assets the fastapi-offline package ships: no CDN, so they work
    without internet."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=Path(fastapi_offline.__file__).with_name("static")), name="docs")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="kamwatch API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="kamwatch API",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )


_SECRET_QUERY = re.compile(r"(?i)([?&](?:token|key|api_key)=)[^&#\s]*")


def redact_query_secrets(text: str) -> str:
    """``text`` with the values of its ``token``/``key`` query parameters replaced (widget tokens travel in
    the widget's URL; they must not land in access logs)."""
    return _SECRET_QUERY.sub(r"\1[redacted]", text)


class RedactQuerySecrets(logging.Filter):
    """Rewrites uvicorn's access log records (``client, method, path?query, http version, status``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_query_secrets(a) if isinstance(a, str) else a for a in record.args)
        return True


def redact_access_log() -> None:
    """Install the filter on uvicorn's access logger, once per process."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactQuerySecrets) for f in access.filters):
        access.addFilter(RedactQuerySecrets())


def app_from_environment() -> FastAPI:
    """The app of one `kamwatch api` server process, configured from the environment."""
    tune_gc()
    return build_app(Settings())


def allowed_methods(request: Request) -> str:
    """Every method of every route on this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with a 413 as soon as it is known to exceed ``limit``: from Content-Length before
    reading anything, else while it streams in (chunked), never after buffering all of it."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Problem(400, "Bad Request", "Content-Length is not a number")
        if int(declared) > limit:
            raise Problem(413, "Content Too Large", f"body of {declared} bytes exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "Content Too Large", f"body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _response(result: BatchResult) -> IngestResponse:
    return IngestResponse(
        accepted=result.count("accepted"),
        duplicates=result.count("duplicate"),
        conflicts=result.count("conflict"),
        rejected=result.count("rejected"),
        results=[
            EventResultOut(index=i, status=r.status, source=r.source, id=r.id, reason=r.reason, field=r.field)
            for i, r in enumerate(result.results)
        ],
    )
