"""All tables, one module per aggregate; importing this package registers them all."""

from otklik.models.base import Base
from otklik.models.event import Event, RejectedEvent
from otklik.models.imports import ImportJob
from otklik.models.order import Order, OrderItem
from otklik.models.profile import Identity, MergeLog, Profile, ResolverState
from otklik.models.user import Membership, User, WebSession
from otklik.models.workspace import ApiKey, Workspace

__all__ = [
    "ApiKey",
    "Base",
    "Event",
    "Identity",
    "ImportJob",
    "Membership",
    "MergeLog",
    "Order",
    "OrderItem",
    "Profile",
    "RejectedEvent",
    "ResolverState",
    "User",
    "WebSession",
    "Workspace",
]
