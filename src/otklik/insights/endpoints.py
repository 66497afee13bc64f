"""REST: refit the customer models, read the latest fit, the RFM grid and a person's scores."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Request

from otklik.insights import service, tasks
from otklik.insights.schemas import FitOut, RefitIn, RefitOut, RfmOut, ScoresOut
from otklik.kit.time import utc_now
from otklik.kit.web import DbSession
from otklik.workspaces.auth import WorkspaceId

router = APIRouter(prefix="/api/v1", tags=["insights"])


@router.post("/insights/refit", response_model=RefitOut)
def refit(
    workspace_id: WorkspaceId,
    request: Request,
    body: Annotated[RefitIn | None, Body()] = None,
) -> RefitOut:
    """Fit the models on every order now and rescore every customer; a model that cannot be
    fitted is recorded as failed with the reason (RFM scores are written all the same)."""
    options = (body or RefitIn()).model_dump()
    result = tasks.run_refit(request.app.state.engine, workspace_id, utc_now(), **options)
    return RefitOut.model_validate(result)


@router.get("/insights", response_model=FitOut)
def latest_fit(workspace_id: WorkspaceId, session: DbSession) -> FitOut:
    return FitOut.model_validate(service.latest_fit(session.connection(), workspace_id))


@router.get("/insights/rfm", response_model=RfmOut)
def rfm_grid(workspace_id: WorkspaceId, session: DbSession) -> RfmOut:
    return RfmOut.model_validate(service.rfm_grid(session.connection(), workspace_id))


@router.get("/profiles/{profile_id}/scores", response_model=ScoresOut)
def profile_scores(
    workspace_id: WorkspaceId, profile_id: uuid.UUID, session: DbSession
) -> ScoresOut:
    scores = service.profile_scores(session.connection(), workspace_id, profile_id)
    return ScoresOut.model_validate(scores)
