"""REST: segments, their live preview, members and history, static lists and snapshots."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response

from otklik.kit.pagination import decode_cursor, encode_cursor
from otklik.kit.time import utc_now
from otklik.kit.web import DbSession
from otklik.profiles import service as profiles
from otklik.profiles.endpoints import scope
from otklik.profiles.schemas import Page
from otklik.profiles.service import Scope
from otklik.segments import repository as repo
from otklik.segments import service
from otklik.segments.schemas import (
    MemberOut,
    MembersIn,
    MembersOut,
    PreviewIn,
    PreviewOut,
    SegmentIn,
    SegmentOut,
    SegmentPatch,
    SnapshotIn,
    StayOut,
)
from otklik.workspaces.auth import WorkspaceId

router = APIRouter(prefix="/api/v1", tags=["segments"])
Limit = Query(50, ge=1, le=500)


def _wake(request: Request, tasks: BackgroundTasks) -> None:
    # After the response, so after the commit: the loop then finds the change at once.
    tasks.add_task(request.app.state.segments.wake)


@router.get("/segments", response_model=list[SegmentOut])
def list_segments(workspace_id: WorkspaceId, session: DbSession) -> list[SegmentOut]:
    rows = repo.segments(session.connection(), workspace_id)
    return [SegmentOut.model_validate(row) for row in rows]


@router.get("/segments/catalog")
def builder_catalog(workspace_id: WorkspaceId, session: DbSession) -> dict[str, Any]:
    """Traits (with types), events, fields, scores and operators the builder offers."""
    return service.builder_catalog(session.connection(), workspace_id)


@router.post("/segments/preview", response_model=PreviewOut)
def preview(body: PreviewIn, workspace_id: WorkspaceId, session: DbSession) -> PreviewOut:
    """Count and sample the customers a rule tree matches now, without saving it."""
    found = service.preview(
        session.connection(), workspace_id, body.rules, utc_now(), body.segment_id
    )
    return PreviewOut.model_validate(found.__dict__)


@router.post("/segments", response_model=SegmentOut, status_code=201)
def create_segment(
    body: SegmentIn,
    workspace_id: WorkspaceId,
    session: DbSession,
    request: Request,
    tasks: BackgroundTasks,
) -> SegmentOut:
    conn = session.connection()
    segment_id = service.create(
        conn,
        workspace_id,
        name=body.name,
        description=body.description,
        kind=body.kind,
        rules=body.rules,
        now=utc_now(),
    )
    _wake(request, tasks)
    return SegmentOut.model_validate(service.get(conn, workspace_id, segment_id))


@router.get("/segments/{segment_id}", response_model=SegmentOut)
def get_segment(segment_id: uuid.UUID, workspace_id: WorkspaceId, session: DbSession) -> SegmentOut:
    return SegmentOut.model_validate(service.get(session.connection(), workspace_id, segment_id))


@router.patch("/segments/{segment_id}", response_model=SegmentOut)
def update_segment(
    segment_id: uuid.UUID,
    body: SegmentPatch,
    workspace_id: WorkspaceId,
    session: DbSession,
    request: Request,
    tasks: BackgroundTasks,
) -> SegmentOut:
    conn = session.connection()
    service.update(conn, workspace_id, segment_id, body.model_dump(exclude_unset=True), utc_now())
    _wake(request, tasks)
    return SegmentOut.model_validate(service.get(conn, workspace_id, segment_id))


@router.delete("/segments/{segment_id}", status_code=204)
def delete_segment(
    segment_id: uuid.UUID, workspace_id: WorkspaceId, session: DbSession
) -> Response:
    service.delete(session.connection(), workspace_id, segment_id)
    return Response(status_code=204)


@router.post("/segments/{segment_id}/rebuild", response_model=SegmentOut, status_code=202)
def rebuild_segment(
    segment_id: uuid.UUID,
    workspace_id: WorkspaceId,
    session: DbSession,
    request: Request,
    tasks: BackgroundTasks,
) -> SegmentOut:
    conn = session.connection()
    service.rebuild(conn, workspace_id, segment_id, utc_now())
    _wake(request, tasks)
    return SegmentOut.model_validate(service.get(conn, workspace_id, segment_id))


@router.post("/segments/{segment_id}/snapshot", response_model=SegmentOut, status_code=201)
def snapshot_segment(
    segment_id: uuid.UUID, body: SnapshotIn, workspace_id: WorkspaceId, session: DbSession
) -> SegmentOut:
    conn = session.connection()
    new_id = service.snapshot(conn, workspace_id, segment_id, body.name, utc_now())
    return SegmentOut.model_validate(service.get(conn, workspace_id, new_id))


@router.get("/segments/{segment_id}/members", response_model=Page[MemberOut])
def segment_members(
    segment_id: uuid.UUID,
    workspace_id: WorkspaceId,
    session: DbSession,
    cursor: str | None = None,
    limit: int = Limit,
) -> Page[MemberOut]:
    conn = session.connection()
    service.get(conn, workspace_id, segment_id)
    after = decode_cursor(cursor, 1)
    rows = repo.members_page(conn, segment_id, int(after[0]) if after else None, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [MemberOut(entered_at=row.entered_at, **service.person(row)) for row in rows]
    return Page(items=items, next_cursor=encode_cursor([rows[-1].id]) if more else None)


@router.post("/segments/{segment_id}/members", response_model=MembersOut)
def add_members(segment_id: uuid.UUID, body: MembersIn, ctx: Scope = Depends(scope)) -> MembersOut:
    """Add customers to a static segment, by profile id, email, phone or user id."""
    return _change_members(segment_id, body, ctx, add=True)


@router.post("/segments/{segment_id}/members/remove", response_model=MembersOut)
def remove_members(
    segment_id: uuid.UUID, body: MembersIn, ctx: Scope = Depends(scope)
) -> MembersOut:
    return _change_members(segment_id, body, ctx, add=False)


def _change_members(segment_id: uuid.UUID, body: MembersIn, ctx: Scope, *, add: bool) -> MembersOut:
    service.get(ctx.conn, ctx.workspace_id, segment_id)
    wanted = {
        "profile_id": body.profile_ids,
        "email": body.emails,
        "phone": body.phones,
        "user_id": body.user_ids,
    }
    ids, missing = service.resolve_people(
        ctx.conn, ctx.workspace_id, {k: v for k, v in wanted.items() if v}, ctx.config.region
    )
    changed = service.change_static(ctx.conn, ctx.workspace_id, segment_id, ids, utc_now(), add=add)
    return MembersOut(changed=changed, not_found=missing)


@router.get("/segments/{segment_id}/history", response_model=list[StayOut])
def segment_history(
    segment_id: uuid.UUID, workspace_id: WorkspaceId, session: DbSession, limit: int = Limit
) -> list[StayOut]:
    """The latest entries and exits, newest first."""
    conn = session.connection()
    service.get(conn, workspace_id, segment_id)
    rows = repo.history(conn, workspace_id, segment_id=segment_id, limit=limit)
    return [StayOut.model_validate(row, from_attributes=True) for row in rows]


@router.get("/profiles/{profile_id}/segments", response_model=list[StayOut])
def profile_segments(
    profile_id: uuid.UUID,
    ctx: Scope = Depends(scope),
    limit: int = Limit,
    current: bool = Query(False, description="Only the segments the customer is in now"),
) -> list[StayOut]:
    """The customer's stays in segments (the merged cluster's), newest first."""
    found = profiles.locate(ctx, profile_id)
    rows = repo.history(
        ctx.conn, ctx.workspace_id, profile_ids=found.members, current=current, limit=limit
    )
    return [StayOut.model_validate(row, from_attributes=True) for row in rows]
