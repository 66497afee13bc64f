"""A full build is all or nothing: readers see the old members or the new ones, never a mix."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from otklik.segments import build as build_module
from tests.conftest import LiveServer, Tenant
from tests.profiles.support import pid_of, send
from tests.segments.support import create, identify, member_ids, segment, settle


def test_a_build_that_fails_midway_leaves_the_old_members(
    http: httpx.Client, tenant: Tenant, live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    send(http, tenant, *(identify(f"b{n}", 0, rank=n) for n in range(6)))
    settle(live)
    seg = create(http, tenant, {"kind": "trait", "field": "rank", "op": "lt", "value": 3}, live)
    before = member_ids(http, tenant, seg["id"])
    assert len(before) == 3
    real_apply = build_module.apply_difference

    def apply_then_fail(*args: Any, **kwargs: Any) -> tuple[int, int]:
        real_apply(*args, **kwargs)  # entries and exits written inside the transaction...
        raise RuntimeError("disk full")  # ...and then the build dies

    monkeypatch.setattr(build_module, "apply_difference", apply_then_fail)
    r = http.patch(
        f"/api/v1/segments/{seg['id']}",
        json={"rules": {"kind": "trait", "field": "rank", "op": "gte", "value": 3}},
        headers=tenant.bearer,
    )
    assert r.status_code == 200, r.text
    live.app.state.segments.drain()
    failed = segment(http, tenant, seg["id"])
    assert failed["state"] == "failed"
    assert "disk full" in failed["build_error"]
    assert member_ids(http, tenant, seg["id"]) == before
    assert failed["members_count"] == 3

    monkeypatch.setattr(build_module, "apply_difference", real_apply)
    r = http.post(f"/api/v1/segments/{seg['id']}/rebuild", headers=tenant.bearer)
    assert r.status_code == 202, r.text
    live.app.state.segments.drain()
    rebuilt = segment(http, tenant, seg["id"])
    assert rebuilt["state"] == "ready" and rebuilt["build_error"] is None
    expected = {pid_of(http, tenant, "user_id", f"b{n}") for n in range(3, 6)}
    assert member_ids(http, tenant, seg["id"]) == expected
