"""REST: profiles, their timelines and orders, merges, duplicates and GDPR requests.

Every route needs a secret key and sees only its own workspace: another workspace's ids
answer 404, exactly like ids that do not exist.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Query, Request, Response

from otklik.kit.nul import NO_NUL
from otklik.kit.time import utc_now
from otklik.kit.web import DbSession
from otklik.profiles import duplicates, gdpr, merge, service
from otklik.profiles.schemas import (
    DuplicateGroup,
    EventOut,
    ExportOut,
    MergeIn,
    MergeLogOut,
    MergeResult,
    OrderOut,
    Page,
    ProfileOut,
    ProfileSummary,
    TraitsPatch,
)
from otklik.profiles.service import Scope
from otklik.workspaces.auth import WorkspaceId

router = APIRouter(prefix="/api/v1", tags=["profiles"])
Limit = Query(50, ge=1, le=500)


def scope(
    workspace_id: WorkspaceId,
    session: DbSession,
    request: Request,
) -> Scope:
    conn = session.connection()
    return Scope(conn, workspace_id, request.app.state.resolver.config_for(conn, workspace_id))


# Fixed paths first: /profiles/{profile_id} would otherwise claim "lookup" and "duplicates".
@router.get("/profiles/lookup", response_model=ProfileOut)
def lookup_profile(
    kind: str = Query(
        alias="type",
        description="user_id, email, phone, ... or external:<kind>",
        pattern=NO_NUL,
        max_length=200,
    ),
    value: str = Query(pattern=NO_NUL, max_length=1000),
    ctx: Scope = Depends(scope),
) -> ProfileOut:
    return ProfileOut.model_validate(service.lookup(ctx, kind, value))


@router.get("/profiles/duplicates", response_model=list[DuplicateGroup])
def find_duplicates(limit: int = Limit, ctx: Scope = Depends(scope)) -> list[DuplicateGroup]:
    return [DuplicateGroup.model_validate(g) for g in duplicates.find_duplicates(ctx, limit)]


@router.post("/profiles/merge", response_model=MergeResult, status_code=201)
def merge_profiles(body: MergeIn, ctx: Scope = Depends(scope)) -> MergeResult:
    result = merge.merge_profiles(ctx, body.winner_id, body.loser_id, utc_now())
    return MergeResult.model_validate(result)


@router.get("/profiles", response_model=Page[ProfileSummary])
def list_profiles(
    q: str | None = Query(
        None,
        description="An email, phone or user id, matched exactly",
        pattern=NO_NUL,
        max_length=1000,
    ),
    cursor: str | None = None,
    limit: int = Limit,
    ctx: Scope = Depends(scope),
) -> Page[ProfileSummary]:
    page = service.list_profiles(ctx, q=q, cursor=cursor, limit=limit)
    return Page[ProfileSummary].model_validate(page, from_attributes=True)


@router.get("/profiles/{profile_id}", response_model=ProfileOut)
def get_profile(profile_id: uuid.UUID, ctx: Scope = Depends(scope)) -> ProfileOut:
    return ProfileOut.model_validate(service.get_profile(ctx, profile_id))


@router.get("/profiles/{profile_id}/timeline", response_model=Page[EventOut])
def get_timeline(
    profile_id: uuid.UUID,
    cursor: str | None = None,
    limit: int = Limit,
    event_type: str | None = Query(None, alias="type", pattern=NO_NUL, max_length=200),
    ctx: Scope = Depends(scope),
) -> Page[EventOut]:
    page = service.timeline(ctx, profile_id, cursor=cursor, limit=limit, event_type=event_type)
    return Page[EventOut].model_validate(page, from_attributes=True)


@router.get("/profiles/{profile_id}/orders", response_model=Page[OrderOut])
def get_orders(
    profile_id: uuid.UUID,
    cursor: str | None = None,
    limit: int = Limit,
    ctx: Scope = Depends(scope),
) -> Page[OrderOut]:
    page = service.orders(ctx, profile_id, cursor=cursor, limit=limit)
    return Page[OrderOut].model_validate(page, from_attributes=True)


@router.patch("/profiles/{profile_id}/traits", response_model=ProfileOut)
def patch_traits(
    profile_id: uuid.UUID, body: TraitsPatch, ctx: Scope = Depends(scope)
) -> ProfileOut:
    view = service.patch_traits(
        ctx, profile_id, set_=body.set, set_once=body.set_once, unset=body.unset, now=utc_now()
    )
    return ProfileOut.model_validate(view)


@router.get("/profiles/{profile_id}/export", response_model=ExportOut)
def export_profile(profile_id: uuid.UUID, ctx: Scope = Depends(scope)) -> ExportOut:
    return ExportOut.model_validate(gdpr.export(ctx, profile_id, utc_now()))


@router.delete("/profiles/{profile_id}", status_code=204)
def erase_profile(profile_id: uuid.UUID, ctx: Scope = Depends(scope)) -> Response:
    gdpr.erase(ctx, profile_id, utc_now())
    return Response(status_code=204)


@router.get("/merges", response_model=Page[MergeLogOut])
def list_merges(
    profile_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: int = Limit,
    ctx: Scope = Depends(scope),
) -> Page[MergeLogOut]:
    page = merge.list_merges(ctx, profile_id, limit=limit, cursor=cursor)
    return Page[MergeLogOut].model_validate(page, from_attributes=True)


@router.post("/merges/{merge_id}/undo", response_model=MergeResult)
def undo_merge(merge_id: uuid.UUID, ctx: Scope = Depends(scope)) -> MergeResult:
    return MergeResult.model_validate(merge.undo_merge(ctx, merge_id, utc_now()))
