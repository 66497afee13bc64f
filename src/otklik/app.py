"""create_app(): the one ASGI application for both modes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from sqlalchemy import Engine

from otklik import __version__
from otklik.api import ROUTERS
from otklik.config import Settings, get_settings
from otklik.delivery.public import router as public_router
from otklik.delivery.runtime import DeliveryRuntime
from otklik.ingest.endpoints import COMPONENTS
from otklik.ingest.mover import open_journal
from otklik.ingest.repository import count_pending
from otklik.ingest.service import Backlog, IngestService
from otklik.ingest.writer import EventWriter
from otklik.kit.db import make_engine
from otklik.kit.runtime import tune_gc
from otklik.kit.web import JSONResponse, install_error_handlers
from otklik.web.router import mount_console
from otklik.worker.resolver_loop import ResolverLoop
from otklik.worker.segment_loop import SegmentLoop
from otklik.workspaces.auth import Authenticator


def build_engine(settings: Settings) -> Engine:
    return make_engine(settings.database_url, synchronous=settings.sqlite_synchronous)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or build_engine(settings)
    backlog = Backlog()
    resolver = ResolverLoop(engine, settings)
    segments = SegmentLoop(engine, settings)
    resolver.on_batch = segments.wake

    def committed(count: int) -> None:
        backlog.add(count)
        resolver.wake()

    writer = EventWriter(
        engine,
        max_queued=settings.ingest_max_queued_events,
        max_batch=settings.ingest_write_batch,
        on_commit=committed,
    )
    authenticator = Authenticator(engine)
    delivery = DeliveryRuntime(engine, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tune_gc()
        with engine.connect() as conn:
            backlog.pending = count_pending(conn)
        journal = open_journal(settings, engine, committed)
        if journal is not None:
            writer.use_spool(journal.spool)
            journal.start()
        writer.start()
        if settings.embedded_worker:
            resolver.start()
            segments.start()
        on = settings.embedded_worker and settings.embedded_delivery
        delivery.start(consume=on, dispatch=on)
        try:
            yield
        finally:
            writer.stop()
            if journal is not None:
                journal.stop()
            resolver.stop()
            segments.stop()
            delivery.stop()

    app = FastAPI(
        title="Otklik",
        version=__version__,
        description="Customer data platform, marketing automation and support inbox.",
        lifespan=lifespan,
        default_response_class=JSONResponse,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.authenticator = authenticator
    app.state.writer = writer
    app.state.resolver = resolver
    app.state.segments = segments
    app.state.backlog = backlog
    app.state.delivery = delivery
    app.state.ingest = IngestService(settings, authenticator, writer, backlog)
    resolver.ingest_active = app.state.ingest.active
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        max_age=86400,
    )
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(public_router)
    mount_console(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    @app.get("/health", tags=["ops"])
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "pending_events": backlog.pending,
            "journalled_events": writer.journalled,
        }

    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, routes=app.routes, description=app.description
        )
        schema.setdefault("components", {}).setdefault("schemas", {}).update(COMPONENTS)
        app.openapi_schema = schema
    return app.openapi_schema
