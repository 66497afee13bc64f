"""Self-test of the throwaway PostgreSQL helper."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from .pg import ENV_URL, pg_url_from_env, start_postgres


def test_pg_url_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    assert pg_url_from_env() is None
    monkeypatch.setenv(ENV_URL, "  ")
    assert pg_url_from_env() is None
    monkeypatch.setenv(ENV_URL, "postgresql+psycopg://u@127.0.0.1:5432/x")
    assert pg_url_from_env() == "postgresql+psycopg://u@127.0.0.1:5432/x"


def test_start_postgres_create_databases_and_stop(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with start_postgres(tmp_path) as pg:
        assert pg.url == f"postgresql+psycopg://otklik@127.0.0.1:{pg.port}/postgres"
        urls = [pg.create_database("otk_one"), pg.create_database("otk_two")]
        assert urls == [pg.url_for("otk_one"), pg.url_for("otk_two")]
        for name in ("otk_one", "otk_two"):
            with psycopg.connect(pg.conninfo(name)) as conn:
                row = conn.execute(
                    "select 1, current_database(), current_user, "
                    "pg_encoding_to_char(encoding) from pg_database "
                    "where datname = current_database()"
                ).fetchone()
                assert row == (1, name, "otklik", "UTF8")
                assert conn.execute("show fsync").fetchone() == ("off",)
                assert conn.execute("show max_connections").fetchone() == ("200",)
        pg.drop_database("otk_two")
        port = pg.port
    # stopped: nothing listens on the port any more
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            f"host=127.0.0.1 port={port} user=otklik dbname=postgres", connect_timeout=2
        )
    assert time.monotonic() - t0 < 15


def test_a_durable_cluster_keeps_fsync_and_full_page_writes(tmp_path: Path) -> None:
    with start_postgres(tmp_path, durable=True) as pg, psycopg.connect(pg.conninfo()) as conn:
        settings = {
            name: conn.execute(f"show {name}").fetchone()
            for name in ("fsync", "full_page_writes", "synchronous_commit")
        }
    assert settings == {
        "fsync": ("on",),
        "full_page_writes": ("on",),
        "synchronous_commit": ("on",),
    }
