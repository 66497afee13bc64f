"""Imports: validate a file, store its rows as events (idempotently), report what happened."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from otklik.ingest import repository as log
from otklik.ingest import wire
from otklik.kit.db import write_tx
from otklik.kit.errors import Unprocessable
from otklik.offline import rows as convert
from otklik.offline.columns import Mapping, apply_mapping
from otklik.offline.rows import Converted, FileError, RowError

CHUNK = 5000
Progress = Callable[[int], None]


@dataclass
class ImportReport:
    kind: str
    rows: int
    accepted: int = 0  # valid records (customers, or orders) in the file
    stored: int = 0  # of those, new facts written now
    unchanged: int = 0  # of those, already imported before with the same content
    rejected: list[RowError] = field(default_factory=list)

    def as_dict(self, limit: int = 1000) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rows": self.rows,
            "accepted": self.accepted,
            "stored": self.stored,
            "unchanged": self.unchanged,
            "rejected_total": len(self.rejected),
            "rejected": [error.as_dict() for error in self.rejected[:limit]],
        }


def convert_file(
    kind: str,
    data: bytes,
    fmt: str,
    *,
    region: str,
    currency: str,
    now: datetime,
    mapping: Mapping | None = None,
    checked: Progress | None = None,
) -> Converted:
    """The file's rows as messages and row errors.

    `mapping` renames (or drops) columns before they are read as fields; `checked` hears how
    many rows have been read and checked so far, every CHUNK rows.
    """
    if kind not in convert.KINDS:
        raise Unprocessable(
            f"kind must be one of {', '.join(convert.KINDS)}", code="unknown_import"
        )
    try:
        rows: Iterable[dict[str, Any]] = convert.read_rows(data, fmt)
        if mapping:
            rows = apply_mapping(rows, mapping)
        if checked is not None:
            rows = _counted(rows, checked)
        if kind == convert.CUSTOMERS:
            return convert.customer_messages(rows, region, now)
        return convert.order_messages(rows, currency)
    except FileError as exc:
        raise Unprocessable(exc.message, code=exc.code) from exc


def _counted(rows: Iterable[dict[str, Any]], checked: Progress) -> Iterator[dict[str, Any]]:
    pending = 0
    for row in rows:
        yield row
        pending += 1
        if pending == CHUNK:
            checked(pending)
            pending = 0
    if pending:
        checked(pending)


def event_rows(
    workspace_id: uuid.UUID, messages: list[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """The stored shape of each message, normalised exactly as a live event would be."""
    out = []
    for message in messages:
        item = wire.normalise(
            message,
            forced_type=None,
            shared_context={},
            shared_integrations={},
            batch_sent_at=None,
            received_at=now,
            client_ip=None,
        )
        out.append(item.row(workspace_id, now))
    return out


def store(engine: Engine, rows: list[dict[str, Any]], progress: Progress | None = None) -> int:
    """Append in chunks, each its own transaction; returns how many were new.

    A crash midway keeps the chunks already committed, and re-running the import then
    stores only the rest: messageIds derive from row content.
    """
    new = 0
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        with write_tx(engine) as conn:
            new += log.append_events(conn, chunk)
        if progress is not None:
            progress(len(chunk))
    return new


def run_import(
    engine: Engine,
    workspace_id: uuid.UUID,
    kind: str,
    data: bytes,
    fmt: str,
    *,
    region: str,
    currency: str,
    now: datetime,
    progress: Progress | None = None,
    mapping: Mapping | None = None,
) -> ImportReport:
    converted = convert_file(
        kind, data, fmt, region=region, currency=currency, now=now, mapping=mapping
    )
    rows = event_rows(workspace_id, converted.messages, now)
    new = store(engine, rows, progress)
    return ImportReport(
        kind=kind,
        rows=converted.rows,
        accepted=len(rows),
        stored=new,
        unchanged=len(rows) - new,
        rejected=sorted(converted.errors, key=lambda e: e.row),
    )
