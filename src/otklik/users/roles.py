"""Roles and what each may do; every console page and action names the permission it needs."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MARKETER = "marketer"
    OPERATOR = "operator"
    VIEWER = "viewer"


class Permission(StrEnum):
    VIEW = "view"  # read customers, events, imports, merges, the dashboard
    EDIT_CUSTOMERS = "edit_customers"  # change a customer's traits
    MANAGE_DATA = "manage_data"  # imports, merges and their undo
    MANAGE_WORKSPACE = "manage_workspace"  # settings, API keys, users, channel providers
    MANAGE_MESSAGING = "manage_messaging"  # templates, test sends, suppressions, consent


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.MARKETER: frozenset(
        {
            Permission.VIEW,
            Permission.EDIT_CUSTOMERS,
            Permission.MANAGE_DATA,
            Permission.MANAGE_MESSAGING,
        }
    ),
    Role.OPERATOR: frozenset({Permission.VIEW, Permission.EDIT_CUSTOMERS}),
    Role.VIEWER: frozenset({Permission.VIEW}),
}

ROLES: tuple[str, ...] = tuple(role.value for role in Role)


def allows(role: str, permission: Permission) -> bool:
    try:
        return permission in GRANTS[Role(role)]
    except ValueError:
        return False
