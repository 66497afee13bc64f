"""Adding addresses to the suppression list by hand or from a CSV file.

Addresses are stored in the form the pipeline compares them in: emails lower-cased (as the
profiles and the REST API store them), phones in E.164, Telegram chats as their numeric id.
A file is one column of addresses, or any table with a column named email, phone or address;
every line that is not a usable address is reported with its line number, not guessed at.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection

from otklik.consent import repository as repo
from otklik.kit.errors import Unprocessable
from otklik.profiles.identity import normalise_email, normalise_phone

CHANNELS = ("email", "sms", "telegram")
MAX_BYTES = 5 * 1024 * 1024
MAX_ADDRESS = 512
ERRORS_KEPT = 200
HEADERS = frozenset({"email", "e-mail", "phone", "address", "chat_id", "telegram"})
TELEGRAM_CHAT = re.compile(r"-?\d{1,20}")


class AddressRefused(Unprocessable):
    code = "invalid_address"


class FileRefused(Unprocessable):
    code = "invalid_file"


def normalise(channel: str, raw: str, region: str) -> str:
    """The stored form of one address, or AddressRefused with a code saying why not."""
    if channel not in CHANNELS:
        raise AddressRefused("unknown channel", code="invalid_channel")
    text = raw.strip()
    if not text:
        raise AddressRefused("no address", code="empty_address")
    if len(text) > MAX_ADDRESS:
        raise AddressRefused("address too long", code="address_too_long")
    value: str | None
    if channel == "email":
        value = normalise_email(text)
        code = "invalid_email"
    elif channel == "sms":
        value = normalise_phone(text, region)
        code = "invalid_phone"
    else:
        value = text if TELEGRAM_CHAT.fullmatch(text) else None
        code = "invalid_chat_id"
    if value is None:
        raise AddressRefused(f"not usable: {text[:80]!r}", code=code)
    return value


def plain_address(text: str, region: str) -> str:
    """An address as typed into a search, in the stored form when it is one."""
    value = text.strip()
    if "@" in value:
        return normalise_email(value) or value.lower()
    return normalise_phone(value, region) or value


@dataclass(frozen=True)
class LineError:
    line: int
    value: str
    code: str


@dataclass
class Report:
    lines: int = 0
    addresses: list[str] = field(default_factory=list)
    duplicates: int = 0
    errors: list[LineError] = field(default_factory=list)
    error_count: int = 0
    added: int = 0

    @property
    def already(self) -> int:
        """Addresses of the file that were on the list before."""
        return len(self.addresses) - self.added


def _text(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel in Russian saves CSV in Windows-1251.
        text = data.decode("cp1251", errors="replace")
    if "\x00" in text:
        raise FileRefused("binary data", code="not_text")
    return text


def _dialect(sample: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        return csv.excel


def parse(data: bytes, channel: str, region: str) -> Report:
    if len(data) > MAX_BYTES:
        raise FileRefused("over 5 MB", code="file_too_large")
    text = _text(data)
    reader = csv.reader(io.StringIO(text, newline=""), _dialect(text[:8192]))
    report = Report()
    column: int | None = None
    seen: set[str] = set()
    for row in reader:
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if column is None:
            names = [c.lower() for c in cells]
            named = [i for i, name in enumerate(names) if name in HEADERS]
            if named:
                column = named[0]
                continue
            if len(cells) > 1:
                raise FileRefused("no address column", code="no_column")
            column = 0
        report.lines += 1
        raw = cells[column] if column < len(cells) else ""
        try:
            value = normalise(channel, raw, region)
        except AddressRefused as exc:
            _error(report, reader.line_num, raw, exc.code)
            continue
        if value in seen:
            report.duplicates += 1
            continue
        seen.add(value)
        report.addresses.append(value)
    if report.lines == 0:
        raise FileRefused("no addresses", code="empty_file")
    return report


def _error(report: Report, line: int, raw: str, code: str) -> None:
    report.error_count += 1
    if len(report.errors) < ERRORS_KEPT:
        report.errors.append(LineError(line, raw[:200], code))


def store(
    conn: Connection,
    workspace_id: uuid.UUID,
    channel: str,
    report: Report,
    source: str,
    now: datetime,
) -> int:
    """Add the file's addresses with the reason "imported"; returns how many were new."""
    detail = f"imported from {source}" if source else "imported"
    rows = [
        {"channel": channel, "address": a, "reason": "imported", "detail": detail}
        for a in report.addresses
    ]
    added = 0
    for start in range(0, len(rows), 1000):
        added += repo.add_suppressions(conn, workspace_id, rows[start : start + 1000], now)
    return added
