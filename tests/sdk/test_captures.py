"""Requests captured byte for byte from the real Python SDKs, replayed against Otklik.

The captures (segment-analytics-python 2.4.0 plain and gzip, rudder-sdk-python 2.1.9 gzip)
live in the shared data folder; only the Authorization header is swapped for our write key.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from tests.ingest.support import basic, by_message_id, profile_of

# shared/ sits beside the repository checkout (in CI as on a developer's machine).
CAPTURES = Path(__file__).resolve().parents[3] / "shared" / "data" / "sdk-captures"
NAMES = [
    "sdk_capture_segment_v2.4.0",
    "sdk_capture_segment_v2.4.0_gzip",
    "sdk_capture_rudder_v2.1.9",
]

pytestmark = pytest.mark.skipif(not CAPTURES.is_dir(), reason=f"{CAPTURES} is not available")


def replay(http, tenant, name: str) -> tuple[dict, object]:
    capture = json.loads((CAPTURES / f"{name}.json").read_text())
    gz = CAPTURES / f"{name}.body.gz"
    raw = gz.read_bytes() if gz.exists() else orjson.dumps(capture["body"])
    headers = {
        key: value
        for key, value in capture["headers"].items()
        if key in ("Content-Type", "Content-Encoding", "User-Agent")
    }
    r = http.post(capture["path"], content=raw, headers={**headers, **basic(tenant.write_key)})
    return capture, r


@pytest.mark.parametrize("name", NAMES)
def test_a_captured_sdk_request_is_stored_and_resolved(live, http, tenant, name):
    capture, r = replay(http, tenant, name)

    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "accepted": 6}
    sent = capture["body"]["batch"]
    rows = by_message_id(live.engine, tenant.id)
    assert set(rows) == {item["messageId"] for item in sent}
    for item in sent:
        row = rows[item["messageId"]]
        assert row.type == item["type"]
        assert row.user_id == item["userId"]
        assert row.anonymous_id == item["anonymousId"]
        for key in ("properties", "traits", "event", "name", "category", "groupId", "previousId"):
            assert row.payload.get(key) == item.get(key), key
        assert row.payload["context"]["library"] == item["context"]["library"]

    live.drain()
    profile = profile_of(live.engine, tenant.id, "user_id", "user-42")
    assert profile.email == "ivan@example.com"  # from traits, or context.traits for RudderStack
    assert profile.traits["name"] == "Иван Петров"
    assert profile.orders_count == 1
    assert profile_of(live.engine, tenant.id, "anonymous_id", "anon-7").id == profile.id
