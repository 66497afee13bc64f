"""Message templates: list, edit with live preview, versions and test sends."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
