"""Domain-free plumbing: ids, time, config and cursors behave as the rest relies on."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from otklik.config import Settings
from otklik.kit.errors import BadRequest
from otklik.kit.ids import uuid7
from otklik.kit.pagination import decode_cursor, encode_cursor
from otklik.kit.time import as_utc, iso, parse_iso


def test_uuid7_is_version_7_and_time_ordered() -> None:
    first = uuid7()
    time.sleep(0.002)
    second = uuid7()
    assert first.version == 7 and second.version == 7
    assert first < second
    ms = first.int >> 80
    assert abs(ms / 1000 - time.time()) < 5


def test_timestamps_parse_to_aware_utc() -> None:
    assert parse_iso("2026-11-01T12:00:00Z") == datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert parse_iso("2026-11-01T15:00:00+03:00") == datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert parse_iso("2026-11-01T12:00:00").tzinfo is not None
    with pytest.raises(ValueError):
        parse_iso("yesterday")


def test_naive_values_from_sqlite_are_read_as_utc() -> None:
    assert as_utc(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=UTC)
    moscow = datetime(2026, 1, 1, 3, tzinfo=timezone(timedelta(hours=3)))
    assert iso(moscow) == "2026-01-01T00:00:00Z"


def test_list_settings_accept_comma_separated_environment_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTKLIK_IDENTITY_UNIQUE_TYPES", "user_id, external:crm")
    monkeypatch.setenv("OTKLIK_JUNK_IDENTIFIERS", '["x@y.z"]')
    settings = Settings()
    assert settings.identity_unique_types == ["user_id", "external:crm"]
    assert settings.junk_identifiers == ["x@y.z"]


def test_settings_file_is_layered_under_the_environment(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "otklik.toml"
    config.write_text('default_phone_region = "KZ"\nresolver_batch = 77\n')
    monkeypatch.setenv("OTKLIK_CONFIG_FILE", str(config))
    monkeypatch.setenv("OTKLIK_RESOLVER_BATCH", "99")
    settings = Settings()
    assert settings.default_phone_region == "KZ"
    assert settings.resolver_batch == 99


def test_cursors_round_trip_and_reject_forgeries() -> None:
    cursor = encode_cursor(["2026-01-01T00:00:00Z", 42])
    assert decode_cursor(cursor, 2) == ["2026-01-01T00:00:00Z", 42]
    for bad in ("!!!", encode_cursor([1]), "e30"):
        with pytest.raises(BadRequest) as caught:
            decode_cursor(bad, 2)
        assert caught.value.code == "invalid_cursor"


def test_sqlite_times_are_formatted_and_read_like_the_column_type() -> None:
    from sqlalchemy import create_engine

    from otklik.kit.rawsql import Dialect, read_sqlite_time, sqlite_time_from_iso

    sqlite = Dialect(create_engine("sqlite://"))
    for value in (
        datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 12, 0, 0, 500, tzinfo=UTC),
        datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(2026, 1, 1, 3, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=3))),
    ):
        text = sqlite.time(value)
        assert sqlite_time_from_iso(iso(value)) == text
        assert read_sqlite_time(text) == value
        assert read_sqlite_time(text).tzinfo is UTC
    assert sqlite_time_from_iso(None) is None
    assert sqlite_time_from_iso("2026-11-01T12:00:00+03:00") is None
    assert read_sqlite_time("2026-11-01T12:00:00+00:00") == datetime(2026, 11, 1, 12, tzinfo=UTC)
