"""The official Segment Node SDK (@segment/analytics-node), unchanged, pointed at Otklik.

tests/sdk/node/send.mjs makes the calls; scripts/setup.sh installs its node_modules.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.ingest.support import by_message_id, profile_of

NODE_DIR = Path(__file__).parent / "node"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(NODE is None, reason="node is not installed (run scripts/setup.sh)"),
    pytest.mark.skipif(
        not (NODE_DIR / "node_modules" / "@segment" / "analytics-node").is_dir(),
        reason="tests/sdk/node/node_modules is missing (run scripts/setup.sh)",
    ),
]


def run_node_sdk(host: str, write_key: str) -> dict:
    done = subprocess.run(
        [str(NODE), "send.mjs", host, write_key],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_segment_analytics_node(live, tenant):
    report = run_node_sdk(live.url, tenant.write_key)

    assert report["errors"] == []
    assert report["delivered"] == report["sent"] == 6
    rows = by_message_id(live.engine, tenant.id)
    # Stored under the ids the SDK generated, once each.
    assert set(rows) == {m["messageId"] for m in report["messages"]}
    for row in rows.values():
        assert row.payload["context"]["library"]["name"] == "@segment/analytics-node"
        assert row.payload["context"]["ip"] == "127.0.0.1"
        assert "writeKey" not in row.payload

    by_kind = {(row.type, row.name): row for row in rows.values()}
    identify = by_kind[("identify", None)]
    assert identify.user_id == "node-user-1"
    assert identify.payload["traits"] == {
        "email": "Node.User@Example.com",
        "name": "Нода",
        "plan": "pro",
    }
    assert identify.timestamp == datetime(2026, 11, 1, 12, tzinfo=UTC)

    order = by_kind[("track", "Order Completed")]
    assert order.user_id == "node-user-1"
    assert order.timestamp == datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert order.payload["properties"]["order_id"] == "n-1"
    assert order.payload["properties"]["products"] == [{"sku": "s1", "quantity": 1, "price": 12.5}]

    page = by_kind[("page", "Home")]
    assert page.payload["properties"]["url"] == "http://127.0.0.1/"
    assert by_kind[("group", "g-1")].payload["traits"] == {"name": "ACME"}
    alias = by_kind[("alias", None)].payload
    assert (alias["previousId"], alias["userId"]) == ("node-anon-1", "node-user-1")
    anonymous = by_kind[("track", "Anonymous Event")]
    assert (anonymous.user_id, anonymous.anonymous_id) == (None, "node-anon-2")
    assert anonymous.payload["properties"] == {"n": 1}

    live.drain()
    profile = profile_of(live.engine, tenant.id, "user_id", "node-user-1")
    assert profile.email == "node.user@example.com"
    assert profile.traits["name"] == "Нода"
    assert profile.orders_count == 1
    assert Decimal(profile.revenue) == Decimal("12.50")
    assert profile_of(live.engine, tenant.id, "anonymous_id", "node-anon-1").id == profile.id
    assert profile_of(live.engine, tenant.id, "anonymous_id", "node-anon-2").id != profile.id
