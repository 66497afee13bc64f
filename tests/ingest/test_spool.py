"""The ingest journal: a 200 may wait for one fsync of a local file instead of the store, and
every journalled row then reaches the event table exactly once.

The journal (ingest/spool.py) is specified on real files; its mover (ingest/mover.py) and the
app on a real store, SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, delete
from sqlalchemy.exc import OperationalError

from otklik.config import Settings
from otklik.ingest import repository, spool
from otklik.ingest.mover import SpoolMover, progress_reader
from otklik.ingest.spool import Position, Row, Spool, SpoolCorrupt
from otklik.kit.db import read_tx, write_tx
from otklik.kit.rawsql import Dialect
from otklik.models import Event
from tests.conftest import LiveServer, make_tenant, serve
from tests.ingest.support import basic, by_message_id, events, normalised, rejected, wait_for

RECEIVED = datetime(2026, 5, 1, 6, 0, 0, 123456, tzinfo=UTC)
EVERYTHING = 10**9  # a max_rows that never stops a read early

# Every type a row may hold, and the awkward values of each.
ROWS: list[Row] = [
    ("ws-1", "m-1", "track", "Order Completed", b'{"total": 1}', True),
    ("ws-1", "m-2", "identify", None, b"", False),
    ("", 'Татьяна "T" \\ ☃', None, None, bytes(range(256)), None),
    ("ws-2", "m-3", "page", "Home", '{"title": "Чайник"}', True),
]


# -- helpers ----------------------------------------------------------------------------------


def no_store(_slot_id: str) -> Position | None:
    """The progress reader of a journal no mover has touched."""
    return None


def rows_of(n: int, width: int = 8) -> list[Row]:
    """`n` rows (str, bool and None), each the same size for the same `width`."""
    return [(f"r{n:03d}-{i}", "x" * width, i % 2 == 0, None) for i in range(n)]


def read_all(journal: Spool, start: Position | None = None) -> list[Row]:
    rows, end = spool.read(journal.slot.path, start or journal.moved, journal.end, EVERYTHING)
    assert end == journal.end
    return rows


def read_in_steps(journal: Spool, max_rows: int) -> list[list[Row]]:
    """What successive reads of at most `max_rows` rows return, from the start to the end."""
    chunks: list[list[Row]] = []
    position = journal.moved
    while position < journal.end:
        rows, after = spool.read(journal.slot.path, position, journal.end, max_rows)
        assert after > position, "a read made no progress"
        chunks.append(rows)
        position = after
    return chunks


def current_segment(journal: Spool) -> Path:
    return spool.segment_path(journal.slot.path, journal.end.segment)


def journal_rows(engine: Engine, workspace_id: uuid.UUID, prefix: str, count: int) -> list[Row]:
    """Accepted events as the event writer journals them: the request path's driver values."""
    items = [
        {
            "type": "track" if i % 3 else "identify",
            "userId": f"u-{i % 3}",
            "event": "Order Completed",
            "messageId": f"{prefix}-{i}",
            "timestamp": f"2026-05-01T05:58:{i % 60:02d}{'.5' if i % 2 else ''}Z",
            "properties": {"title": "Чайник электрический", "n": i},
        }
        for i in range(count)
    ]
    accepted = [normalised(item, RECEIVED) for item in items]
    return repository.accepted_params(Dialect(engine), workspace_id, RECEIVED, accepted)


def message_ids(rows: list[Row]) -> list[str]:
    return [str(row[1]) for row in rows]


def stored_ids(engine: Engine, workspace_id: uuid.UUID) -> list[str]:
    """Message ids in the event table, in log order; fails if any is there twice."""
    return list(by_message_id(engine, workspace_id))


def saved_position(engine: Engine, slot_id: str) -> Position | None:
    with read_tx(engine) as conn:
        return repository.spool_progress(conn, slot_id)


def erase(engine: Engine, workspace_id: uuid.UUID) -> None:
    """Delete a workspace's events, as erasing people does: a replay would bring them back."""
    with write_tx(engine) as conn:
        conn.execute(delete(Event).where(Event.workspace_id == workspace_id))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "spool"


# -- 1. the journal: append, read, segments ---------------------------------------------------


def test_rows_read_back_exactly_as_appended_in_order(root: Path) -> None:
    journal = Spool(root, no_store)
    try:
        journal.append(ROWS[:2])
        journal.append(ROWS[2:3])
        journal.append(ROWS[3:])

        assert read_all(journal) == ROWS
        assert journal.backlog == len(ROWS)
    finally:
        journal.close()


def test_a_read_returns_whole_records_and_at_least_one(root: Path) -> None:
    journal = Spool(root, no_store)
    try:
        records = [rows_of(3), rows_of(2), rows_of(4)]
        for rows in records:
            journal.append(rows)

        # One row asked for: the whole of each record, one record a read.
        assert read_in_steps(journal, max_rows=1) == records
        # A read stops at the first record boundary at or past max_rows: 3 < 4, so the
        # second record is read too, whole; then the third.
        assert read_in_steps(journal, max_rows=4) == [records[0] + records[1], records[2]]
    finally:
        journal.close()


def test_a_small_segment_size_spreads_records_over_segments_that_reads_cross(root: Path) -> None:
    segment_bytes = 256
    journal = Spool(root, no_store, segment_bytes=segment_bytes)
    try:
        records = [rows_of(n % 3 + 1) for n in range(12)]
        for rows in records:
            journal.append(rows)

        numbers = spool.segments(journal.slot.path)
        assert len(numbers) >= 3
        assert numbers == list(range(numbers[0], numbers[-1] + 1))
        for number in numbers:
            size = spool.segment_path(journal.slot.path, number).stat().st_size
            assert 0 < size <= segment_bytes
        everything = [row for rows in records for row in rows]
        assert read_all(journal) == everything
        assert read_in_steps(journal, max_rows=1) == records
        assert journal.end.segment == numbers[-1]
    finally:
        journal.close()


def test_a_record_larger_than_a_segment_is_written_whole_in_a_segment_of_its_own(
    root: Path,
) -> None:
    journal = Spool(root, no_store, segment_bytes=128)
    try:
        small, big = rows_of(1), rows_of(3, width=200)
        journal.append(small)
        journal.append(big)
        journal.append(small)

        assert len(spool.segments(journal.slot.path)) == 3
        assert read_in_steps(journal, max_rows=1) == [small, big, small]
    finally:
        journal.close()


def test_drop_before_deletes_only_the_older_segments(root: Path) -> None:
    journal = Spool(root, no_store, segment_bytes=128)
    try:
        for _ in range(8):
            journal.append(rows_of(2))
        numbers = spool.segments(journal.slot.path)
        assert len(numbers) >= 4
        everything = read_all(journal)
        keep = numbers[2]

        spool.drop_before(journal.slot.path, keep)

        assert spool.segments(journal.slot.path) == numbers[2:]
        rest = read_all(journal, start=Position(keep, 0))
        assert 0 < len(rest) < len(everything)
        assert everything[-len(rest) :] == rest
    finally:
        journal.close()


# -- 2. damage: a torn tail is cut, anything else is refused ---------------------------------


def cut_the_last_record_halfway(path: Path, before_last: int, after_last: int) -> int:
    with path.open("r+b") as handle:
        handle.truncate(before_last + (after_last - before_last) // 2)
    return before_last


def add_garbage_after_the_last_record(path: Path, before_last: int, after_last: int) -> int:
    with path.open("ab") as handle:
        handle.write(b"\xff\x00 not a record \x00\xff" * 3)
    return after_last


def break_the_last_record_checksum(path: Path, before_last: int, after_last: int) -> int:
    with path.open("r+b") as handle:
        handle.seek(after_last - 1)
        last = handle.read(1)
        handle.seek(after_last - 1)
        handle.write(bytes([last[0] ^ 0xFF]))
    return before_last


@pytest.mark.parametrize(
    "damage",
    [
        cut_the_last_record_halfway,
        add_garbage_after_the_last_record,
        break_the_last_record_checksum,
    ],
)
def test_reopening_cuts_a_torn_tail_back_to_the_last_whole_record(
    root: Path, damage: Callable[[Path, int, int], int]
) -> None:
    journal = Spool(root, no_store)
    first, second = rows_of(2), rows_of(3)
    journal.append(first)
    before_last = journal.end.offset
    journal.append(second)
    after_last = journal.end.offset
    path = current_segment(journal)
    journal.close()
    whole = damage(path, before_last, after_last)

    reopened = Spool(root, no_store)
    try:
        assert reopened.slot.path == journal.slot.path
        assert reopened.recovered_end == Position(journal.end.segment, whole)
        assert path.stat().st_size == whole
        expected = first + second if whole == after_last else first
        rows, end = spool.read(reopened.slot.path, reopened.moved, reopened.recovered_end, 10)
        assert (rows, end) == (expected, reopened.recovered_end)
        # The reopened journal writes on in a new segment, readable after the cut.
        reopened.append(rows_of(1))
        assert read_all(reopened) == expected + rows_of(1)
    finally:
        reopened.close()


def test_a_bad_checksum_inside_an_older_segment_makes_read_raise_spool_corrupt(
    root: Path, tmp_path: Path
) -> None:
    # Records of equal size, three to a segment.
    probe = Spool(tmp_path / "probe", no_store)
    probe.append(rows_of(2))
    record_bytes = probe.end.offset
    probe.close()
    journal = Spool(root, no_store, segment_bytes=3 * record_bytes)
    try:
        for _ in range(5):
            journal.append(rows_of(2))
        older = spool.segments(journal.slot.path)[0]
        assert journal.end.segment > older
        path = spool.segment_path(journal.slot.path, older)
        assert path.stat().st_size == 3 * record_bytes
        with path.open("r+b") as handle:  # one flipped bit in the second record's rows
            handle.seek(record_bytes + record_bytes // 2)
            byte = handle.read(1)[0]
            handle.seek(record_bytes + record_bytes // 2)
            handle.write(bytes([byte ^ 0x01]))

        rows, after = spool.read(journal.slot.path, journal.moved, journal.end, 1)
        assert (rows, after) == (rows_of(2), Position(older, record_bytes))
        with pytest.raises(SpoolCorrupt):
            spool.read(journal.slot.path, after, journal.end, EVERYTHING)
        with pytest.raises(SpoolCorrupt):
            read_all(journal)
    finally:
        journal.close()


# -- 3. slots: one per process, adopted when it dies -----------------------------------------


def test_two_journals_on_one_root_claim_different_slots(root: Path) -> None:
    first, second = Spool(root, no_store), Spool(root, no_store)
    try:
        assert (first.slot.path.name, second.slot.path.name) == ("0", "1")
        assert first.slot.id != second.slot.id
    finally:
        first.close()
        second.close()


def test_a_closed_slot_is_claimable_again_and_keeps_its_id(root: Path) -> None:
    first, second = Spool(root, no_store), Spool(root, no_store)
    id_file = (root / "0" / "id").read_text()
    first.close()
    try:
        again = Spool(root, no_store)
        try:
            assert again.slot.path == first.slot.path
            assert again.slot.id == first.slot.id
            assert (root / "0" / "id").read_text() == id_file
        finally:
            again.close()
    finally:
        second.close()


def test_orphans_are_only_the_unlocked_slots_that_hold_segments(root: Path) -> None:
    own, alive = Spool(root, no_store), Spool(root, no_store)
    dead = Spool(root, no_store)  # slot 2: its process died with a journal
    emptied = Spool(root, no_store)  # slot 3: died, and its journal was moved and deleted
    dead.append(rows_of(1))
    dead.close()
    emptied.close()
    spool.drop_before(emptied.slot.path, 10**6)
    stray = root / "notes"  # not a slot
    stray.mkdir()
    (stray / "0000000001.seg").write_bytes(b"")
    try:
        found = list(spool.orphans(root, own.slot))
        try:
            assert [slot.path.name for slot in found] == ["2"]
            assert found[0].id == dead.slot.id
            # An orphan is held while it is being adopted: nobody else claims it meanwhile.
            newcomer = Spool(root, no_store)
            assert newcomer.slot.path.name == "3"
            newcomer.close()
        finally:
            for slot in found:
                slot.release()
    finally:
        own.close()
        alive.close()


# -- 4. the mover: each row once, its position saved with it ---------------------------------


@pytest.fixture
def process(engine: Engine, root: Path) -> Iterator[Callable[[], Spool]]:
    """Opens a journal on `root` as a starting process would; all are closed afterwards
    (closing again what a test already closed, to stand for a death, is harmless)."""
    opened: list[Spool] = []

    def start() -> Spool:
        journal = Spool(root, progress_reader(engine))
        opened.append(journal)
        return journal

    yield start
    for journal in opened:
        journal.close()


def test_the_mover_stores_each_row_once_and_saves_its_position_with_them(
    engine: Engine, root: Path, process: Callable[[], Spool]
) -> None:
    tenant = make_tenant(engine)
    journal = process()
    records = [journal_rows(engine, tenant.id, f"r{n}", size) for n, size in enumerate((3, 1, 4))]
    for rows in records:
        journal.append(rows)
    everything = [row for rows in records for row in rows]
    assert spool.unmoved_bytes(root, progress_reader(engine)) > 0
    mover = SpoolMover(engine, journal, batch=2)

    position, moved = journal.moved, 0
    while position < journal.end:
        before = position
        position = mover._move_step(journal.slot, position, journal.end)
        rows, _ = spool.read(journal.slot.path, before, position, EVERYTHING)
        moved += len(rows)
        # The rows and the position after them are committed together.
        assert saved_position(engine, journal.slot.id) == position
        assert stored_ids(engine, tenant.id) == message_ids(everything[:moved])

    assert position == journal.end
    assert stored_ids(engine, tenant.id) == message_ids(everything)
    assert mover.moved_events == len(everything)
    assert journal.backlog == 0
    assert spool.unmoved_bytes(root, progress_reader(engine)) == 0


@pytest.mark.parametrize("failing", ["insert_event_params", "save_spool_progress"])
def test_a_move_that_fails_commits_neither_its_rows_nor_its_position(
    engine: Engine,
    process: Callable[[], Spool],
    monkeypatch: pytest.MonkeyPatch,
    failing: str,
) -> None:
    tenant = make_tenant(engine)
    journal = process()
    rows = journal_rows(engine, tenant.id, "f", 5)
    journal.append(rows)
    mover = SpoolMover(engine, journal, batch=100)
    real = getattr(repository, failing)

    def half_then_fail(conn: Any, *args: Any) -> Any:
        real(conn, *args)
        raise OperationalError("statement", {}, Exception("the store went away"))

    monkeypatch.setattr(repository, failing, half_then_fail)
    with pytest.raises(OperationalError):
        mover._move_step(journal.slot, journal.moved, journal.end)
    assert events(engine, tenant.id) == []
    assert saved_position(engine, journal.slot.id) is None

    monkeypatch.undo()  # the store is back: the same rows are moved, once
    assert mover._move_step(journal.slot, journal.moved, journal.end) == journal.end
    assert stored_ids(engine, tenant.id) == message_ids(rows)
    assert saved_position(engine, journal.slot.id) == journal.end


def test_a_record_the_store_refuses_is_recorded_as_rejected_and_the_rest_moves_on(
    engine: Engine, process: Callable[[], Spool], monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = make_tenant(engine)
    journal = process()
    good, bad, later = (journal_rows(engine, tenant.id, p, 2) for p in ("ok", "bad", "later"))
    for rows in (good, bad, later):
        journal.append(rows)
    real = repository.insert_event_params

    def refuse_bad(conn: Any, rows: list[Row]) -> int:
        if any(row[1].startswith("bad") for row in rows):
            raise ValueError("refused")
        return int(real(conn, rows))

    monkeypatch.setattr(repository, "insert_event_params", refuse_bad)
    mover = SpoolMover(engine, journal, batch=100)
    position = journal.moved
    while position < journal.end:
        position = mover._move_step(journal.slot, position, journal.end)

    assert stored_ids(engine, tenant.id) == message_ids(good + later)
    refused = rejected(engine, tenant.id)
    assert [r.code for r in refused] == ["store_refused"] * 2
    assert all(r.message == "ValueError: refused" for r in refused)
    assert saved_position(engine, journal.slot.id) == journal.end
    assert journal.backlog == 0


def test_a_restarted_process_moves_nothing_twice_and_never_brings_back_erased_events(
    engine: Engine, process: Callable[[], Spool]
) -> None:
    tenant = make_tenant(engine)
    first = process()
    rows = journal_rows(engine, tenant.id, "once", 6)
    first.append(rows)
    mover = SpoolMover(engine, first, batch=4)
    mover.start()
    mover.stop()  # moves what is journalled, then stops
    end = first.end
    first.close()
    assert stored_ids(engine, tenant.id) == message_ids(rows)
    erase(engine, tenant.id)

    again = process()  # the next life of the same process
    assert again.slot.id == first.slot.id
    assert again.moved == again.recovered_end == end
    restarted = SpoolMover(engine, again, batch=4)
    assert restarted.recover() == 0
    assert events(engine, tenant.id) == []

    # What the new life journals is moved, once.
    more = journal_rows(engine, tenant.id, "later", 3)
    again.append(more)
    restarted.start()
    restarted.stop()
    assert stored_ids(engine, tenant.id) == message_ids(more)
    assert saved_position(engine, again.slot.id) == again.end


def test_a_process_that_died_mid_journal_has_the_rest_moved_by_its_successor(
    engine: Engine, process: Callable[[], Spool]
) -> None:
    tenant = make_tenant(engine)
    dead = process()
    records = [journal_rows(engine, tenant.id, f"d{n}", 2) for n in range(4)]
    for rows in records:
        dead.append(rows)
    moved_to = SpoolMover(engine, dead, batch=1)._move_step(dead.slot, dead.moved, dead.end)
    dead.close()  # died before moving the other three records
    assert stored_ids(engine, tenant.id) == message_ids(records[0])
    erase(engine, tenant.id)

    successor = process()
    assert successor.moved == moved_to
    assert successor.recovered_end == dead.end
    assert SpoolMover(engine, successor, batch=1).recover() == 6
    rest = [row for rows in records[1:] for row in rows]
    assert stored_ids(engine, tenant.id) == message_ids(rest)
    assert saved_position(engine, successor.slot.id) == dead.end


def test_a_dead_process_journal_is_adopted_by_another_process_mover(
    engine: Engine, process: Callable[[], Spool]
) -> None:
    tenant = make_tenant(engine)
    alive, dead = process(), process()
    rows = journal_rows(engine, tenant.id, "orphan", 5)
    dead.append(rows)
    dead.close()  # died without moving anything

    mover = SpoolMover(engine, alive, batch=2)
    assert mover.recover() == len(rows)
    assert stored_ids(engine, tenant.id) == message_ids(rows)
    assert saved_position(engine, dead.slot.id) == dead.end
    assert spool.segments(dead.slot.path) == []  # nothing of it is left to adopt
    assert mover.recover() == 0
    assert stored_ids(engine, tenant.id) == message_ids(rows)


def test_a_slot_claimed_again_after_adoption_has_its_new_rows_moved(
    engine: Engine, process: Callable[[], Spool]
) -> None:
    """Adoption deletes every segment but keeps the position: new segments go past it."""
    tenant = make_tenant(engine)
    alive, dead = process(), process()
    dead.append(journal_rows(engine, tenant.id, "before", 3))
    dead.close()
    SpoolMover(engine, alive, batch=100).recover()

    again = process()  # the dead process restarts
    assert again.slot.path == dead.slot.path
    mover = SpoolMover(engine, again, batch=100)
    mover.recover()
    mover.start()
    after = journal_rows(engine, tenant.id, "after", 4)
    again.append(after[:2])
    again.append(after[2:])
    wait_for(lambda: len(stored_ids(engine, tenant.id)) == 7, timeout=10)
    mover.stop()
    assert again.backlog == 0
    assert stored_ids(engine, tenant.id)[3:] == message_ids(after)


def test_damage_inside_an_older_segment_is_kept_aside_and_logged_at_reopening(
    root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    probe = Spool(tmp_path / "probe", no_store)
    probe.append(rows_of(2))
    record_bytes = probe.end.offset
    probe.close()
    journal = Spool(root, no_store, segment_bytes=3 * record_bytes)
    for _ in range(5):
        journal.append(rows_of(2))
    older = spool.segments(journal.slot.path)[0]
    path = spool.segment_path(journal.slot.path, older)
    journal.close()
    damaged = bytearray(path.read_bytes())
    damaged[record_bytes + record_bytes // 2] ^= 0x01
    path.write_bytes(bytes(damaged))

    reopened = Spool(root, no_store)
    try:
        assert path.with_suffix(".bad").read_bytes() == bytes(damaged)
        assert path.stat().st_size == record_bytes  # the record before the damage is kept
        assert "is damaged at byte" in caplog.text
        assert any(r.levelname == "ERROR" for r in caplog.records)
        assert read_all(reopened)[:2] == rows_of(2)
    finally:
        reopened.close()


def test_a_live_process_journal_is_left_to_its_own_mover(
    engine: Engine, process: Callable[[], Spool]
) -> None:
    tenant = make_tenant(engine)
    mine, theirs = process(), process()
    theirs.append(journal_rows(engine, tenant.id, "theirs", 2))

    assert SpoolMover(engine, mine, batch=10).recover() == 0
    assert events(engine, tenant.id) == []
    assert saved_position(engine, theirs.slot.id) is None


# -- 5. the app with the journal on ---------------------------------------------------------

# Times are sent, not derived from receivedAt, so two workspaces store the same ones.
BATCH: list[dict[str, Any]] = [
    {
        "type": "identify",
        "userId": "u-1",
        "traits": {"email": "t@example.ru", "name": "Татьяна"},
        "messageId": "batch-identify",
        "timestamp": "2026-05-01T05:00:00Z",
    },
    {
        "type": "track",
        "userId": "u-1",
        "event": "Order Completed",
        "properties": {"total": 1990.5, "items": [{"sku": "k-1", "qty": 2}], "gift": False},
        "messageId": "batch-track",
        "timestamp": "2026-05-01T05:00:01.250Z",
    },
    {
        "type": "page",
        "anonymousId": "a-1",
        "name": "Home",
        "messageId": "batch-page",
        "originalTimestamp": "2026-05-01T05:00:02Z",
    },
    {
        "type": "screen",
        "anonymousId": "a-1",
        "name": "Cart",
        "messageId": "batch-screen",
        "timestamp": "2026-05-01T08:00:03+03:00",
    },
    {
        "type": "group",
        "userId": "u-1",
        "groupId": "g-1",
        "messageId": "batch-group",
        "timestamp": "2026-05-01T05:00:04Z",
    },
    {
        "type": "alias",
        "userId": "u-1",
        "previousId": "a-1",
        "messageId": "batch-alias",
        "timestamp": "2026-05-01T05:00:05Z",
    },
]


@contextmanager
def store_held(engine: Engine) -> Iterator[None]:
    """Another connection holds the store: writes to the event table wait, reads do not."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("BEGIN IMMEDIATE")
        else:
            cursor.execute("LOCK TABLE event IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            if engine.dialect.name == "sqlite":
                cursor.execute("ROLLBACK")
            else:
                raw.rollback()
    finally:
        raw.close()


def health(server: LiveServer) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/health", timeout=10)
    assert r.status_code == 200, r.text
    return dict(r.json())


def stored_fields(engine: Engine, workspace_id: uuid.UUID) -> list[tuple[Any, ...]]:
    """What the event table holds of each event, less what depends on the receipt time."""
    return [
        (
            row.message_id,
            row.type,
            row.name,
            row.user_id,
            row.anonymous_id,
            row.timestamp,
            {k: v for k, v in row.payload.items() if k != "receivedAt"},
        )
        for row in events(engine, workspace_id)
    ]


@pytest.fixture
def journalling(settings: Settings, engine: Engine, tmp_path: Path) -> Iterator[LiveServer]:
    """The app with the ingest journal on (the default), in this test's directory."""
    on = settings.model_copy(
        update={"ingest_spool": True, "ingest_spool_dir": str(tmp_path / "spool")}
    )
    with serve(on, engine) as server:
        yield server


def test_with_the_journal_on_a_batch_is_acknowledged_then_stored_as_without_it(
    journalling: LiveServer, settings: Settings, engine: Engine
) -> None:
    journalled, direct = make_tenant(engine), make_tenant(engine)
    with httpx.Client(base_url=journalling.url, timeout=10) as http, store_held(engine):
        started = time.monotonic()
        r = http.post("/v1/batch", json={"batch": BATCH}, headers=basic(journalled.write_key))
        assert r.status_code == 200, r.text
        assert time.monotonic() - started < 2  # it did not wait for the store
        assert r.json() == {"success": True, "accepted": len(BATCH)}
        assert events(engine, journalled.id) == []  # acknowledged from the journal
        assert health(journalling)["journalled_events"] == len(BATCH)

    wait_for(lambda: len(events(engine, journalled.id)) == len(BATCH))
    wait_for(lambda: health(journalling)["journalled_events"] == 0)

    # The same batch through the default test server, journal off, as the `live` fixture runs
    # it (started here so that no server of this module outlives its test).
    with serve(settings, engine) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        r = http.post("/v1/batch", json={"batch": BATCH}, headers=basic(direct.write_key))
        assert r.status_code == 200, r.text

    assert stored_fields(engine, journalled.id) == stored_fields(engine, direct.id)
    assert [row[0] for row in stored_fields(engine, journalled.id)] == [
        item["messageId"] for item in BATCH
    ]


# -- 6. SQLite: a write transaction of this process does not hold up a 200 -------------------


def test_a_post_is_acknowledged_while_this_process_holds_the_sqlite_write_lock(
    journalling: LiveServer, engine: Engine
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL has no store-wide write lock")
    tenant = make_tenant(engine)
    message = {"userId": "u-1", "event": "Product Viewed", "messageId": "busy-1"}
    with httpx.Client(base_url=journalling.url, timeout=10) as http:
        # As the resolver or an import holds it: the writer turn and BEGIN IMMEDIATE.
        with write_tx(engine):
            started = time.monotonic()
            r = http.post("/v1/track", json=message, headers=basic(tenant.write_key))
            assert r.status_code == 200, r.text
            assert time.monotonic() - started < 2
            assert events(engine, tenant.id) == []
            assert health(journalling)["journalled_events"] == 1

        [row] = wait_for(lambda: events(engine, tenant.id))
        assert (row.message_id, row.type, row.name) == ("busy-1", "track", "Product Viewed")
        wait_for(lambda: health(journalling)["journalled_events"] == 0)


@pytest.mark.parametrize(
    ("url", "configured", "enabled", "expected"),
    [
        ("sqlite:///var/data/otklik.db", "", True, Path("var/data/otklik.db.spool")),
        ("sqlite:////srv/otklik.db", "", True, Path("/srv/otklik.db.spool")),
        ("sqlite://", "", True, None),
        ("sqlite:///:memory:", "", True, None),
        ("postgresql://u@h/db", "", True, Path("./var/ingest-spool")),
        ("postgresql://u@h/db", "/data/journal", True, Path("/data/journal")),
        ("sqlite:///var/data/otklik.db", "", False, None),
    ],
)
def test_the_journal_lives_beside_a_sqlite_file_or_where_it_is_told(
    url: str, configured: str, enabled: bool, expected: Path | None
) -> None:
    assert spool.spool_root(url, configured, enabled) == expected
