"""`otklik user ...`: console accounts, so the first admin exists before anyone can sign in."""

from __future__ import annotations

import typer
from rich.console import Console

from otklik.cli.context import engine_and_settings
from otklik.kit.db import session_scope
from otklik.kit.errors import AppError
from otklik.kit.migrate import upgrade
from otklik.users import service as users
from otklik.users.roles import ROLES
from otklik.workspaces import service as workspaces

user_app = typer.Typer(help="Console users and their roles.", no_args_is_help=True)
console = Console()


@user_app.command("create")
def create(
    email: str,
    workspace: str = typer.Option(..., "--workspace", "-w", help="Workspace slug"),
    role: str = typer.Option("admin", help=f"One of: {', '.join(ROLES)}"),
    name: str = typer.Option("", help="Display name"),
    password: str = typer.Option(
        ...,
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        envvar="OTKLIK_USER_PASSWORD",
        help="Asked for when not given (or set OTKLIK_USER_PASSWORD)",
    ),
) -> None:
    """Create a console user (or add an existing one to another workspace) with a role."""
    engine, _ = engine_and_settings()
    upgrade(engine)
    try:
        with session_scope(engine) as session:
            ws = workspaces.find_workspace(session, workspace)
            user = users.add_member(
                session, ws.id, email=email, role=role, password=password, name=name
            )
            console.print(f"user [bold]{user.email}[/] is {role} of workspace {ws.slug}")
    except AppError as exc:
        console.print(f"[red]{exc.code}[/]: {exc.message}")
        raise typer.Exit(2) from exc


@user_app.command("list")
def list_users(workspace: str = typer.Option(..., "--workspace", "-w")) -> None:
    engine, _ = engine_and_settings()
    with session_scope(engine, write=False) as session:
        try:
            ws = workspaces.find_workspace(session, workspace)
        except AppError as exc:
            console.print(f"[red]{exc.code}[/]: {exc.message}")
            raise typer.Exit(2) from exc
        for user, role in users.members(session, ws.id):
            state = " (disabled)" if user.disabled_at else ""
            console.print(f"{user.email}\t{role}{state}")
