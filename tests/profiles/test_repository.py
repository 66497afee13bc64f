"""The resolver's profile writes store exactly what the plain SQLAlchemy statements store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import bindparam, select, update

from otklik.kit.db import write_tx
from otklik.kit.ids import uuid7
from otklik.profiles import repository as repo
from tests.conftest import make_tenant

NOW = datetime(2026, 5, 1, 6, 0, 0, 123456, tzinfo=UTC)


def new_profile(workspace_id, profile_id):
    return {
        "id": profile_id,
        "workspace_id": workspace_id,
        "traits": {},
        "email": None,
        "phone": None,
        "merged_into": None,
        "erased_at": None,
        "created_at": NOW,
        "updated_at": NOW,
        "first_seen_at": None,
        "last_seen_at": None,
        "events_count": 0,
        "orders_count": 0,
        "revenue": Decimal("0"),
        "last_order_at": None,
    }


def changes(profile_id, owner):
    return {
        "id": profile_id,
        "traits": {"name": 'Татьяна "T" \\ ☃', "age": 31, "tags": ["a", None], "x": 1.5},
        "email": "t@example.com",
        "phone": None,
        "merged_into": owner,
        "updated_at": NOW,
        "first_seen_at": datetime(2026, 4, 1, 9, 30, tzinfo=UTC),
        # Another offset and a whole second: stored as the same UTC text either way.
        "last_seen_at": datetime(2026, 4, 2, 12, 0, tzinfo=timezone(timedelta(hours=3))),
        "events_count": 12,
        "orders_count": 2,
        "revenue": Decimal("12345.67"),
        "last_order_at": None,
    }


def test_update_profiles_stores_what_sqlalchemy_would(engine):
    tenant = make_tenant(engine)
    fast, plain, owner = uuid7(), uuid7(), uuid7()
    with write_tx(engine) as conn:
        repo.insert_profiles(conn, [new_profile(tenant.id, pid) for pid in (fast, plain, owner)])
    wanted = changes(fast, owner)
    with write_tx(engine) as conn:
        repo.update_profiles(conn, [wanted])
        columns = [key for key in wanted if key != "id"]
        conn.execute(
            update(repo.P)
            .where(repo.P.c.id == bindparam("_id"))
            .values({key: bindparam(key) for key in columns}),
            [{**changes(plain, owner), "_id": plain}],
        )

    def stored(pid):
        cols = [repo.P.c[name] for name in columns]
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":  # the raw text and types, not what reads make
                names = ", ".join(f"typeof({c.name}) || ':' || quote({c.name})" for c in cols)
                return conn.exec_driver_sql(
                    f"SELECT {names} FROM profile WHERE id = ?", (pid.hex,)
                ).one()
            return conn.execute(select(*cols).where(repo.P.c.id == pid)).one()

    assert stored(fast) == stored(plain)
    with engine.connect() as conn:
        row = conn.execute(select(repo.P).where(repo.P.c.id == fast)).one()
    assert row.traits == wanted["traits"]
    assert row.merged_into == owner
    assert row.last_seen_at == datetime(2026, 4, 2, 9, 0, tzinfo=UTC)
    assert row.revenue == Decimal("12345.67")
    assert (row.events_count, row.orders_count, row.email) == (12, 2, "t@example.com")
