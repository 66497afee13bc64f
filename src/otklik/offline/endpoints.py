"""REST: upload a customers or orders file; the answer is the import report."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import Engine

from otklik.kit.db import session_scope
from otklik.kit.errors import BadRequest
from otklik.kit.time import utc_now
from otklik.models import Workspace
from otklik.offline.schemas import ImportReportOut
from otklik.offline.service import run_import
from otklik.workspaces import service as workspaces
from otklik.workspaces.auth import WorkspaceId

router = APIRouter(prefix="/api/v1", tags=["imports"])

CONTENT_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/json": "json",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
}


@router.post(
    "/imports/{kind}",
    response_model=ImportReportOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
async def import_file(
    workspace_id: WorkspaceId,
    kind: str,
    request: Request,
    format: str | None = Query(None, description="csv, json or jsonl; default from Content-Type"),
) -> dict[str, Any]:
    """Import customers (one row each) or orders (one row per line item), idempotently."""
    settings = request.app.state.settings
    limit = settings.import_max_bytes
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > limit:
            raise BadRequest(f"The file exceeds {limit} bytes", code="payload_too_large")
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    fmt = format or CONTENT_TYPES.get(content_type, "csv")
    engine = request.app.state.engine
    workspace = await asyncio.to_thread(_workspace, engine, workspace_id)
    report = await asyncio.to_thread(
        run_import,
        engine,
        workspace_id,
        kind,
        bytes(data),
        fmt,
        region=workspace.default_region,
        currency=workspace.currency,
        now=utc_now(),
    )
    if report.stored:
        request.app.state.backlog.add(report.stored)
        request.app.state.resolver.wake()
    return report.as_dict()


def _workspace(engine: Engine, workspace_id: uuid.UUID) -> Workspace:
    with session_scope(engine, write=False) as session:
        return workspaces.get_workspace(session, workspace_id)
