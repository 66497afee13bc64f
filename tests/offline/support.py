"""Helpers for the import specs: build files, upload them, read what was stored."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from otklik.demo.offline import ORDER_COLUMNS
from otklik.models import Event
from tests.conftest import Tenant

CUSTOMER_HEADER = ("external_id", "email", "phone", "first_name", "birthday", "city")
# The columns of an orders export are the demo's POS export's, one row per line item.
ORDER_HEADER = ORDER_COLUMNS


def csv_file(header: Sequence[str], rows: Sequence[Sequence[Any]], delimiter: str = ",") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def upload(
    http: httpx.Client,
    tenant: Tenant,
    kind: str,
    body: bytes,
    *,
    fmt: str | None = "csv",
    content_type: str = "text/csv",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    params = {"format": fmt} if fmt else {}
    return http.post(
        f"/api/v1/imports/{kind}",
        content=body,
        params=params,
        headers={"Content-Type": content_type, **(headers or tenant.bearer)},
    )


def imported(
    http: httpx.Client, tenant: Tenant, kind: str, body: bytes, **kwargs: Any
) -> dict[str, Any]:
    """Upload a file that must be accepted as a whole; the import report."""
    r = upload(http, tenant, kind, body, **kwargs)
    assert r.status_code == 200, r.text
    report: dict[str, Any] = r.json()
    assert report["kind"] == kind
    assert report["rejected_total"] == len(report["rejected"])
    assert report["accepted"] == report["stored"] + report["unchanged"]
    return report


def counts(report: dict[str, Any]) -> tuple[int, int, int, int, int]:
    """(rows, accepted, stored, unchanged, rejected_total) of a report."""
    return (
        report["rows"],
        report["accepted"],
        report["stored"],
        report["unchanged"],
        report["rejected_total"],
    )


def rejections(report: dict[str, Any]) -> list[tuple[int, str, str | None]]:
    """(row, code, field) of every rejected row, in row order."""
    return [(e["row"], e["code"], e["field"]) for e in report["rejected"]]


def event_count(engine: Engine, workspace_id: uuid.UUID) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(Event).where(Event.workspace_id == workspace_id)
            ).scalar_one()
        )


def error_of(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
