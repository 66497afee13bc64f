"""The list of routers the app serves, in one place."""

from __future__ import annotations

from fastapi import APIRouter

from otklik.delivery.endpoints import router as delivery_router
from otklik.delivery.push_endpoints import router as push_router
from otklik.ingest.endpoints import router as ingest_router
from otklik.insights.endpoints import router as insights_router
from otklik.offline.endpoints import router as offline_router
from otklik.profiles.endpoints import router as profiles_router
from otklik.segments.endpoints import router as segments_router
from otklik.templates.endpoints import router as templates_router
from otklik.workspaces.endpoints import router as workspace_router

ROUTERS: list[APIRouter] = [
    ingest_router,
    workspace_router,
    profiles_router,
    offline_router,
    delivery_router,
    templates_router,
    push_router,
    segments_router,
    insights_router,
]
