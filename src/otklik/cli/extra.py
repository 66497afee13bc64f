"""The registry of CLI commands that live in their own modules."""

from __future__ import annotations

import typer

from otklik.cli import bench, data, segments, users


def register(app: typer.Typer) -> None:
    app.command("import")(data.import_command)
    app.command("export")(data.export_command)
    app.command("demo")(data.demo_command)
    app.add_typer(users.user_app, name="user")
    app.add_typer(segments.segments_app, name="segments")
    app.command(
        "bench", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
    )(bench.bench_command)
