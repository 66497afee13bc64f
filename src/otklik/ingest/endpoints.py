"""The Segment-compatible tracking routes; all work happens in IngestService."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from otklik.ingest import wire
from otklik.ingest.schemas import Batch, ErrorBody, IngestResult, Message
from otklik.ingest.service import Call, IngestService
from otklik.kit.errors import BadRequest
from otklik.kit.web import JSONResponse

router = APIRouter(tags=["tracking"])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid JSON, oversize body or invalid event"},
    401: {"model": ErrorBody, "description": "Missing or unknown write key"},
    429: {"model": ErrorBody, "description": "Busy: retry after Retry-After seconds"},
}


# Schemas referenced by the request bodies below; app.py adds them to the OpenAPI components.
COMPONENTS: dict[str, Any] = {}


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    COMPONENTS.update(schema.pop("$defs", {}))
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": schema},
                "text/plain": {"schema": {"type": "string"}},
            },
        }
    }


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"The body exceeds {limit} bytes", code="payload_too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"The body exceeds {limit} bytes", code="payload_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


async def _accept(route: str, request: Request) -> JSONResponse:
    service: IngestService = request.app.state.ingest
    service.check_route(route)
    raw = await _read_capped(request, service.settings.ingest_max_batch_bytes)
    call = Call(
        route=route,
        body=raw,
        content_encoding=request.headers.get("content-encoding"),
        authorization=request.headers.get("authorization"),
        client_ip=request.client.host if request.client else None,
    )
    return JSONResponse(await service.accept(call))


def _handler(route: str) -> Any:
    async def handle(request: Request) -> JSONResponse:
        return await _accept(route, request)

    return handle


for _route in (*wire.BATCH_ROUTES, *wire.ROUTE_TYPES):
    _batch = _route in wire.BATCH_ROUTES
    router.add_api_route(
        f"/v1/{_route}",
        _handler(_route),
        methods=["POST"],
        response_model=IngestResult,
        responses=ERRORS,
        openapi_extra=_body_doc(Batch if _batch else Message),
        summary=f"Send many calls at once (/v1/{_route})"
        if _batch
        else f"{wire.ROUTE_TYPES[_route]} call (/v1/{_route})",
        name=f"ingest_{_route}",
        # The browser SDK's one-letter aliases work but would only clutter the document.
        include_in_schema=_batch or len(_route) > 1,
    )


async def _unknown(route: str, request: Request) -> JSONResponse:
    # Registered last: any other /v1/<name> answers with the stable unknown_endpoint code.
    service: IngestService = request.app.state.ingest
    service.check_route(route)
    return await _accept(route, request)


router.add_api_route("/v1/{route}", _unknown, methods=["POST"], include_in_schema=False)
