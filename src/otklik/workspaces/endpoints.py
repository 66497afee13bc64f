"""REST: the calling workspace and its API keys.

Sessions use scope="function": they commit before the response is sent, so a client never
hears "done" about a change that is not yet committed (or that then fails to commit).
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from otklik.kit.web import DbSession
from otklik.workspaces import service
from otklik.workspaces.auth import WorkspaceId
from otklik.workspaces.schemas import IssuedKeyOut, KeyIn, KeyOut, WorkspaceOut

router = APIRouter(prefix="/api/v1", tags=["workspace"])


@router.get("/workspace", response_model=WorkspaceOut)
def get_workspace(
    workspace_id: WorkspaceId,
    session: DbSession,
) -> WorkspaceOut:
    return WorkspaceOut.model_validate(service.get_workspace(session, workspace_id))


@router.get("/keys", response_model=list[KeyOut])
def list_keys(
    workspace_id: WorkspaceId,
    session: DbSession,
) -> list[KeyOut]:
    return [KeyOut.model_validate(k) for k in service.list_keys(session, workspace_id)]


@router.post("/keys", response_model=IssuedKeyOut, status_code=201)
def create_key(
    workspace_id: WorkspaceId,
    session: DbSession,
    body: KeyIn,
) -> IssuedKeyOut:
    issued = service.issue_key(session, workspace_id, body.kind, name=body.name)
    return IssuedKeyOut(**KeyOut.model_validate(issued.key).model_dump(), token=issued.token)


@router.delete("/keys/{key_id}", status_code=204)
def revoke_key(
    workspace_id: WorkspaceId,
    session: DbSession,
    key_id: uuid.UUID,
    request: Request,
) -> Response:
    service.revoke_key(session, workspace_id, key_id)
    request.app.state.authenticator.forget_after_commit(session)
    return Response(status_code=204)
