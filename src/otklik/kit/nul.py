"""PostgreSQL stores no NUL character in text or JSON: refuse it at the edge, with a clear
error, instead of failing the insert (the ingest API replaces it instead, see ingest/wire)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_validator

# For query parameters that reach SQL: FastAPI answers 422 for a value with NUL in it.
NO_NUL = r"^[^\x00]*$"


def has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


class NoNul(BaseModel):
    """A request body in which no string, at any depth, contains NUL."""

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if has_nul(data):
            raise ValueError("text must not contain NUL (\\u0000) characters")
        return data
