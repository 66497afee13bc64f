"""REST shapes of an import report."""

from __future__ import annotations

from pydantic import BaseModel


class RowErrorOut(BaseModel):
    row: int
    code: str
    message: str
    field: str | None = None


class ImportReportOut(BaseModel):
    kind: str
    rows: int
    accepted: int
    stored: int
    unchanged: int
    rejected_total: int
    rejected: list[RowErrorOut]
