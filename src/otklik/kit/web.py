"""FastAPI plumbing shared by every domain's endpoints: the per-request session, errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from otklik.kit.db import session_scope
from otklik.kit.errors import AppError, TooManyRequests


class JSONResponse(Response):
    """orjson-encoded JSON: UUIDs, datetimes and Decimals need no custom encoder."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_default, option=orjson.OPT_NON_STR_KEYS)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def db_session(request: Request) -> Iterator[Session]:
    """One session per request; committed after the endpoint returns, never by a service."""
    with session_scope(request.app.state.engine, write=request.method != "GET") as session:
        yield session


# Every endpoint takes its session through this: scope="function" commits before the response
# is sent, so a client never hears "done" about a change that is not committed (or then fails).
DbSession = Annotated[Session, Depends(db_session, scope="function")]


# A front end (the console) may answer errors on its own paths in its own format: each hook
# returns a response, or None to leave the error to the JSON handlers below.
ErrorHook = Callable[[Request, int, str, str], Response | None]


def _hooked(request: Request, status: int, code: str, message: str) -> Response | None:
    for hook in getattr(request.app.state, "error_hooks", ()):
        response = hook(request, status, code, message)
        if response is not None:
            return response
    return None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        hooked = _hooked(request, exc.status, exc.code, exc.message)
        if hooked is not None:
            return hooked
        headers = {}
        if isinstance(exc, TooManyRequests):
            headers = {
                "Retry-After": str(exc.retry_after),
                "X-RateLimit-Reset": str(exc.retry_after),
            }
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        hooked = _hooked(request, 422, "validation_error", "The request is not valid")
        if hooked is not None:
            return hooked
        details = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg"), "type": err.get("type")}
            for err in exc.errors()
        ]
        return JSONResponse(
            {"code": "validation_error", "message": "The request is not valid", "details": details},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed"}
        code = codes.get(exc.status_code, "http_error")
        hooked = _hooked(request, exc.status_code, code, str(exc.detail))
        if hooked is not None:
            return hooked
        return JSONResponse(
            {"code": code, "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )
