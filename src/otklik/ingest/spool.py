"""A local journal of accepted events: an acknowledgement can wait for one fsync, not the store.

On SQLite the event table shares one write lock with the resolver, and under load an ingest
commit queued behind whole resolver batches (docs/benchmarks.md, "bench/ingest"). When the
store is busy the event writer appends a group's rows here, fsyncs and acknowledges; the
`SpoolMover` (ingest/mover.py) then inserts them into the event table in large
transactions and records how far it got in the same transaction, so every journalled row
reaches the table exactly once.

Layout: `<root>/<n>/` for each writing process, claimed by an exclusive `flock` on
`<root>/<n>/lock`. The kernel drops the lock when the process dies, so a restarted process
(or any other) adopts a dead one's journal. A slot holds `id`, a UUID naming it in the
progress table (slots of several hosts sharing one PostgreSQL never collide), and numbered
segment files of records: a 12-byte header (payload length, CRC-32, row count) and the rows
as `marshal` data. Rows are tuples of str, bytes, bool and None, which marshal writes and
reads in C several times faster than any JSON codec; it builds values, never runs code. Each
process starts a new segment, so a torn record can only be the tail of an older segment,
which recovery cuts off: it was never fsynced, so never acknowledged.
"""

from __future__ import annotations

import fcntl
import logging
import marshal
import os
import shutil
import struct
import threading
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

HEADER = struct.Struct("<III")
SEGMENT_BYTES = 64 * 1024 * 1024
Row = tuple[Any, ...]


class Position(NamedTuple):
    """Where the next record starts: segment number and byte offset in it."""

    segment: int
    offset: int


class SpoolCorrupt(Exception):
    pass


def spool_root(database_url: str, configured: str, enabled: bool) -> Path | None:
    """Where this deployment journals, or None when it does not."""
    if not enabled:
        return None
    if configured:
        return Path(configured)
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return None  # nothing durable to journal for
        return Path(url.database + ".spool")
    return Path("./var/ingest-spool")


def segment_path(slot: Path, segment: int) -> Path:
    return slot / f"{segment:010d}.seg"


def segments(slot: Path) -> list[int]:
    return sorted(int(p.stem) for p in slot.glob("*.seg") if p.stem.isdigit())


@dataclass
class Slot:
    """A claimed journal directory; `release` (or the process's death) frees it."""

    path: Path
    id: str
    lock_fd: int

    def release(self) -> None:
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1


def _try_lock(path: Path) -> Slot | None:
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    id_file = path / "id"
    if not id_file.exists():
        tmp = path / "id.tmp"
        tmp.write_text(uuid.uuid4().hex)
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        tmp.replace(id_file)
        _fsync_dir(path)
    return Slot(path, id_file.read_text().strip(), fd)


def claim(root: Path) -> Slot:
    """The first numbered slot under `root` no live process holds."""
    root.mkdir(parents=True, exist_ok=True)
    n = 0
    while True:
        slot = _try_lock(root / str(n))
        if slot is not None:
            return slot
        n += 1


def orphans(root: Path, own: Slot) -> Iterator[Slot]:
    """Slots of processes that died with journalled rows; each is held until released."""
    for path in sorted(root.iterdir() if root.exists() else []):
        if path == own.path or not path.name.isdigit() or not segments(path):
            continue
        slot = _try_lock(path)
        if slot is not None:
            yield slot


def recover(slot: Path, start: Position) -> Position:
    """Validate the journal from `start`, cut off a torn tail; returns the end of the data.

    Only the last segment can end in a torn record (its writer died mid-append, before the
    fsync, so before acknowledging it). A bad record in an older, completed segment means
    the disk damaged fsynced data: the segment is copied aside as `.bad` for inspection,
    the records before the damage are kept and the loss is logged as an error.
    """
    end = start
    numbers = [n for n in segments(slot) if n >= start.segment]
    for segment in numbers:
        path = segment_path(slot, segment)
        offset = start.offset if segment == start.segment else 0
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            while offset < size:
                record = _read_record(handle.fileno(), offset, size)
                if record is None:
                    break
                offset += HEADER.size + record[0]
        if offset < size:
            if segment == numbers[-1]:
                log.warning("ingest spool %s: cutting %d torn bytes", path, size - offset)
            else:
                shutil.copyfile(path, path.with_suffix(".bad"))
                log.error(
                    "ingest spool %s is damaged at byte %d: %d acknowledged bytes after it"
                    " are unreadable (copy kept as %s)",
                    path,
                    offset,
                    size - offset,
                    path.with_suffix(".bad").name,
                )
            os.truncate(path, offset)
        end = Position(segment, offset)
    return end


def _read_record(fd: int, offset: int, limit: int) -> tuple[int, bytes] | None:
    """(payload length, payload) of the record at `offset`, or None if it is incomplete."""
    if offset + HEADER.size > limit:
        return None
    length, crc, _count = HEADER.unpack(os.pread(fd, HEADER.size, offset))
    if offset + HEADER.size + length > limit:
        return None
    data = os.pread(fd, length, offset + HEADER.size)
    if len(data) != length or zlib.crc32(data) != crc:
        return None
    return length, data


def read(slot: Path, start: Position, end: Position, max_rows: int) -> tuple[list[Row], Position]:
    """Whole records from `start` up to `end` (at least one, then up to `max_rows` rows)."""
    rows: list[Row] = []
    segment, offset = start
    max_rows = max(max_rows, 1)
    while (segment, offset) < end and len(rows) < max_rows:
        path = segment_path(slot, segment)
        if segment < end.segment and (not path.exists() or offset >= path.stat().st_size):
            segment, offset = segment + 1, 0
            continue
        limit = end.offset if segment == end.segment else path.stat().st_size
        with path.open("rb") as handle:
            while offset < limit and len(rows) < max_rows:
                record = _read_record(handle.fileno(), offset, limit)
                if record is None:
                    raise SpoolCorrupt(f"{path} at {offset}: record fails its checksum")
                rows.extend(marshal.loads(record[1]))
                offset += HEADER.size + record[0]
    return rows, Position(segment, offset)


def drop_before(slot: Path, segment: int) -> None:
    """Delete segments wholly moved into the store."""
    for number in segments(slot):
        if number < segment:
            segment_path(slot, number).unlink(missing_ok=True)


def unmoved_bytes(root: Path, progress: Callable[[str], Position | None]) -> int:
    """Journalled bytes not yet in the store, over every slot (for monitoring and tests)."""
    total = 0
    for path in sorted(root.iterdir() if root.exists() else []):
        id_file = path / "id"
        if not id_file.exists():
            continue
        done = progress(id_file.read_text().strip()) or Position(0, 0)
        for segment in segments(path):
            if segment < done.segment:
                continue
            size = segment_path(path, segment).stat().st_size
            total += size - (done.offset if segment == done.segment else 0)
    return total


class Spool:
    """The writing side of this process's slot: appends, fsyncs, tells the mover."""

    def __init__(
        self,
        root: Path,
        progress: Callable[[str], Position | None],
        *,
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        self.root = root
        self.slot = claim(root)
        self._segment_bytes = segment_bytes
        existing = segments(self.slot.path)
        done = progress(self.slot.id)
        # What a previous holder of this slot journalled but did not move.
        self.moved = done or Position(existing[0] if existing else 0, 0)
        self.recovered_end = recover(self.slot.path, self.moved)
        # Past both the files and the saved position: a slot another process adopted has
        # no files left, yet its position must stay behind everything written from now on.
        self._segment = max(existing[-1] if existing else 0, self.moved.segment) + 1
        self._offset = 0
        self._fd = self._open_segment(self._segment)
        self._cond = threading.Condition()
        self.end = Position(self._segment, 0)
        self.backlog = 0  # rows appended by this process and not yet moved
        self._closed = False

    def _open_segment(self, number: int) -> int:
        fd = os.open(
            segment_path(self.slot.path, number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        _fsync_dir(self.slot.path)  # the new file's name must survive a power cut too
        return fd

    def append(self, rows: list[Row]) -> None:
        """Journal `rows` as one record; returns once they are on disk."""
        data = marshal.dumps(rows)
        record = HEADER.pack(len(data), zlib.crc32(data), len(rows)) + data
        if self._offset and self._offset + len(record) > self._segment_bytes:
            os.close(self._fd)
            self._segment += 1
            self._offset = 0
            self._fd = self._open_segment(self._segment)
        view = memoryview(record)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fdatasync(self._fd)
        self._offset += len(record)
        with self._cond:
            self.end = Position(self._segment, self._offset)
            self.backlog += len(rows)
            self._cond.notify_all()

    def wait(self, beyond: Position, timeout: float) -> Position:
        """The journal's end once it is past `beyond` (or after `timeout`)."""
        with self._cond:
            if self.end <= beyond and not self._closed:
                self._cond.wait(timeout)
            return self.end

    def moved_rows(self, count: int) -> None:
        with self._cond:
            self.backlog = max(self.backlog - count, 0)
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.slot.release()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
