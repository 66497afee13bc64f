"""The registry of CLI command groups that live beside their domains."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    return None
