"""The stored `timestamp` text is kit.time.iso of the event's time, whatever shape was sent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otklik.kit.time import iso, parse_iso
from tests.ingest.support import normalised

RECEIVED = datetime(2026, 5, 1, 12, 0, 0, 123_456, tzinfo=UTC)


def stamp(**times: str) -> tuple[str, datetime]:
    accepted = normalised({"type": "track", "userId": "u", "event": "e", **times}, RECEIVED)
    assert accepted.payload["timestamp"] == accepted.timestamp_iso
    return accepted.timestamp_iso, accepted.timestamp


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2026-05-01T13:51:03.196Z", "2026-05-01T13:51:03.196000Z"),
        ("2026-05-01T13:51:03.000Z", "2026-05-01T13:51:03Z"),
        ("2026-05-01T13:51:03Z", "2026-05-01T13:51:03Z"),
        ("2026-05-01T13:51:03.000001Z", "2026-05-01T13:51:03.000001Z"),
        ("2026-05-01T13:51:03.000000Z", "2026-05-01T13:51:03Z"),
        ("2026-05-01T13:51:03.1Z", "2026-05-01T13:51:03.100000Z"),
        ("2026-05-01 13:51:03.196Z", "2026-05-01T13:51:03.196000Z"),
        ("2026-05-01T13:51:03,196Z", "2026-05-01T13:51:03.196000Z"),
        ("2026-05-01T16:51:03.196+03:00", "2026-05-01T13:51:03.196000Z"),
        ("2026-05-01T13:51:03.196", "2026-05-01T13:51:03.196000Z"),
        ("2026-W18-5T13:51:03.196Z", "2026-05-01T13:51:03.196000Z"),
        ("2026-05-01", "2026-05-01T00:00:00Z"),
    ],
)
@pytest.mark.parametrize("field", ["timestamp", "originalTimestamp"])
def test_each_shape_is_stored_in_the_one_iso_form(field, sent, stored):
    text, when = stamp(**{field: sent})
    assert text == stored
    assert when == parse_iso(stored)


_instants = st.datetimes(
    min_value=datetime(1, 1, 1, 0, 0, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
)


@given(
    when=_instants,
    decimals=st.sampled_from([None, 1, 3, 6]),
    separator=st.sampled_from(["T", " "]),
    zone=st.sampled_from(["Z", "+00:00", ""]),
)
def test_stored_text_is_iso_of_the_instant_sent(when, decimals, separator, zone):
    text = when.replace(tzinfo=None).isoformat(separator, "seconds")
    if decimals is not None:
        text += "." + f"{when.microsecond:06d}"[:decimals]
    text += zone
    stored, parsed = stamp(timestamp=text)
    assert parsed == parse_iso(text)
    assert stored == iso(parsed)
