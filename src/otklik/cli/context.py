"""What every CLI command needs: settings and an engine."""

from __future__ import annotations

from sqlalchemy import Engine

from otklik.app import build_engine
from otklik.config import Settings, get_settings
from otklik.kit.runtime import tune_gc


def engine_and_settings() -> tuple[Engine, Settings]:
    tune_gc()
    settings = get_settings()
    return build_engine(settings), settings
