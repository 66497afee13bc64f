"""The list of routers the app serves, in one place."""

from __future__ import annotations

from fastapi import APIRouter

from otklik.ingest.endpoints import router as ingest_router
from otklik.workspaces.endpoints import router as workspace_router

ROUTERS: list[APIRouter] = [ingest_router, workspace_router]
