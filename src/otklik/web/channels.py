"""Channel providers: add, edit, check and test each provider (admins)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
