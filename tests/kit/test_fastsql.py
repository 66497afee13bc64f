"""Fast statements give the same answers as SQLAlchemy's own execution, on both stores."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, Uuid, bindparam, select

from otklik.kit.fastsql import Fast, among, ids_param, texts_param
from otklik.models.base import UTCDateTime

META = MetaData()
THING = Table(
    "fastsql_thing",
    META,
    Column("id", Uuid, primary_key=True),
    Column("label", String(20)),
    Column("size", Integer),
    Column("at", UTCDateTime()),
)
START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
IDS = [uuid.UUID(int=n + 1) for n in range(5)]


@pytest.fixture(scope="module")
def table(engine: Engine) -> Iterator[Table]:
    META.create_all(engine)
    rows = [
        {"id": pid, "label": f"L{n}", "size": n * 10, "at": START + timedelta(hours=n)}
        for n, pid in enumerate(IDS)
    ]
    with engine.begin() as conn:
        conn.execute(THING.insert(), rows)
    yield THING
    META.drop_all(engine)


def test_a_list_of_ids_is_one_parameter_whatever_its_length(engine: Engine, table: Table) -> None:
    query = Fast(select(table.c.id).where(among(table.c.id, ids_param("ids"))))
    with engine.connect() as conn:
        for wanted in ([], IDS[:1], IDS[1:4], [*IDS, uuid.uuid4()]):
            found = {row.id for row in query.rows(conn, {"ids": wanted})}
            assert found == set(wanted) & set(IDS)


def test_values_are_converted_both_ways(engine: Engine, table: Table) -> None:
    query = Fast(
        select(table.c.id, table.c.label, table.c.at).where(
            table.c.at >= bindparam("since", type_=UTCDateTime())
        )
    )
    with engine.connect() as conn:
        rows = query.rows(conn, {"since": START + timedelta(hours=3)})
    assert sorted(rows) == [
        (IDS[3], "L3", START + timedelta(hours=3)),
        (IDS[4], "L4", START + timedelta(hours=4)),
    ]
    assert all(isinstance(row.id, uuid.UUID) and row.at.tzinfo is not None for row in rows)


def test_parameters_read_at_run_time_and_fixed_lists(engine: Engine, table: Table) -> None:
    state = {"ids": IDS[:3], "labels": ["L0", "L2", "L4"]}
    query = Fast(
        select(table.c.size).where(
            among(table.c.id, ids_param(callable_=lambda: state["ids"])),
            among(table.c.label, texts_param(callable_=lambda: state["labels"])),
            table.c.size.in_([0, 20, 30, 40]),  # fixed in the statement
        )
    )
    with engine.connect() as conn:
        assert sorted(r.size for r in query.rows(conn)) == [0, 20]
        state["ids"] = IDS
        assert sorted(r.size for r in query.rows(conn)) == [0, 20, 40]


def test_writes_join_the_connection_transaction(engine: Engine, table: Table) -> None:
    grow = Fast(
        table.update()
        .where(among(table.c.id, ids_param("ids")))
        .values(size=table.c.size + bindparam("by", type_=Integer))
    )
    with engine.connect() as conn:
        with conn.begin() as tx:
            assert grow.execute(conn, {"ids": IDS[:2], "by": 1}) == 2
            tx.rollback()
        sizes = conn.execute(select(table.c.size).where(table.c.id.in_(IDS[:2]))).scalars()
        assert sorted(sizes) == [0, 10]


def test_changing_lists_must_come_through_among(engine: Engine, table: Table) -> None:
    query = Fast(
        select(table.c.id).where(
            table.c.id.in_(bindparam("ids", expanding=True, callable_=lambda: IDS))
        )
    )
    with engine.connect() as conn, pytest.raises(ValueError, match="among"):
        query.rows(conn)


def test_among_also_runs_through_sqlalchemy(engine: Engine, table: Table) -> None:
    query = select(table.c.id).where(among(table.c.id, ids_param("ids")))
    with engine.connect() as conn:
        assert set(conn.execute(query, {"ids": IDS[1:3]}).scalars()) == set(IDS[1:3])
        assert list(conn.execute(query, {"ids": []})) == []


def test_a_write_outside_a_transaction_begins_one_as_sqlalchemy_would(
    engine: Engine, table: Table
) -> None:
    rename = Fast(
        table.update()
        .where(table.c.id == bindparam("id", type_=Uuid))
        .values(label=bindparam("label", type_=String))
    )
    with engine.connect() as conn:
        rename.execute(conn, {"id": IDS[0], "label": "gone"})
        assert conn.in_transaction()
        conn.rollback()
        assert conn.execute(select(table.c.label).where(table.c.id == IDS[0])).scalar() == "L0"
