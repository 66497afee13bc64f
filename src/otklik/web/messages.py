"""The message log with each message's history and skip reasons; suppression lists."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
