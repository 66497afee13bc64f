"""REST: templates, their versions and previews with a real profile."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query

from otklik.delivery.schemas import (
    PreviewIn,
    PreviewOut,
    TemplateIn,
    TemplateOut,
    TemplateVersionIn,
)
from otklik.kit.web import DbSession
from otklik.profiles import service as profiles
from otklik.profiles.endpoints import scope
from otklik.profiles.service import Scope
from otklik.templates import preview, service
from otklik.templates import repository as repo
from otklik.workspaces.auth import WorkspaceId

router = APIRouter(prefix="/api/v1", tags=["templates"])


def template_out(row: Any, content: dict[str, Any] | None = None) -> TemplateOut:
    out = TemplateOut.model_validate(row)
    out.content = content
    return out


@router.post("/templates", response_model=TemplateOut, status_code=201)
def create_template(body: TemplateIn, workspace_id: WorkspaceId, session: DbSession) -> TemplateOut:
    conn = session.connection()
    template_id = service.create(
        conn, workspace_id, service.TemplateIn(**body.model_dump()), author="api"
    )
    row = service.get(conn, workspace_id, str(template_id))
    return template_out(row, body.content)


@router.get("/templates", response_model=list[TemplateOut])
def list_templates(
    workspace_id: WorkspaceId,
    session: DbSession,
    channel: Literal["email", "sms", "telegram", "webpush", "mobile_push", "webhook"] | None = None,
    archived: bool = False,
) -> list[TemplateOut]:
    rows = repo.list_templates(session.connection(), workspace_id, channel, archived)
    return [template_out(r) for r in rows]


@router.get("/templates/{ref}", response_model=TemplateOut)
def get_template(
    ref: str, workspace_id: WorkspaceId, session: DbSession, version: int | None = Query(None, ge=1)
) -> TemplateOut:
    conn = session.connection()
    row = service.get(conn, workspace_id, ref)
    return template_out(row, service.content_of(conn, row, version))


@router.put("/templates/{ref}", response_model=TemplateOut)
def save_template(
    ref: str, body: TemplateVersionIn, workspace_id: WorkspaceId, session: DbSession
) -> TemplateOut:
    """Store a new version (checked first: errors name the field and line) and make it current."""
    conn = session.connection()
    service.save_version(
        conn,
        workspace_id,
        ref,
        body.content,
        "api",
        name=body.name,
        purpose=body.purpose,
        topic=body.topic,
    )
    row = service.get(conn, workspace_id, ref)
    return template_out(row, body.content)


@router.post("/templates/{ref}/preview", response_model=PreviewOut)
def preview_template(ref: str, body: PreviewIn, ctx: Scope = Depends(scope)) -> PreviewOut:
    row = service.get(ctx.conn, ctx.workspace_id, ref)
    content = body.content or service.content_of(ctx.conn, row, body.version)
    profile = profiles.locate(ctx, body.profile_id).root if body.profile_id else None
    shown = preview.render(
        ctx.conn, ctx.workspace_id, row.channel, content, profile=profile, data=body.data
    )
    sms = shown.sms
    return PreviewOut(
        subject=shown.rendered.subject,
        text=shown.rendered.text,
        html=shown.rendered.html,
        data=shown.rendered.data,
        sms={"encoding": sms.encoding, "units": sms.units, "parts": sms.parts} if sms else None,
    )
