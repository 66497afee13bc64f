"""`otklik bench NAME [ARGS]`: run bench/NAME.py from the source tree (JSON lines out)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

BENCH_DIR = Path(__file__).resolve().parents[3] / "bench"


def bench_command(ctx: typer.Context, name: str = typer.Argument(..., help="e.g. ingest")) -> None:
    """Run a benchmark; extra arguments go to it (try `otklik bench ingest --help`)."""
    script = BENCH_DIR / f"{name}.py"
    if not script.is_file():
        found = sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_"))
        typer.echo(
            f"no benchmark {name!r}; benchmarks live in a source checkout: {found}", err=True
        )
        raise typer.Exit(2)
    raise typer.Exit(subprocess.call([sys.executable, str(script), *ctx.args]))
