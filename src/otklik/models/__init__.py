"""All tables, one module per aggregate; importing this package registers them all."""

from otklik.models.base import Base
from otklik.models.channel import ChannelSetting, PushSubscription
from otklik.models.consent import Consent, Suppression
from otklik.models.event import Event, IngestSpoolProgress, RejectedEvent
from otklik.models.imports import ImportJob
from otklik.models.insight import InsightFit, ProfileScore
from otklik.models.message import DeliveryAttempt, FrequencyPolicy, Message, MessageEvent
from otklik.models.order import Order, OrderItem
from otklik.models.profile import Identity, MergeLog, Profile, ResolverState
from otklik.models.segment import (
    Segment,
    SegmentDirty,
    SegmentDue,
    SegmentMembership,
    SegmentState,
)
from otklik.models.template import Template, TemplateVersion
from otklik.models.user import Membership, User, WebSession
from otklik.models.workspace import ApiKey, Workspace

__all__ = [
    "ApiKey",
    "Base",
    "ChannelSetting",
    "Consent",
    "DeliveryAttempt",
    "Event",
    "FrequencyPolicy",
    "Identity",
    "ImportJob",
    "IngestSpoolProgress",
    "InsightFit",
    "Membership",
    "MergeLog",
    "Message",
    "MessageEvent",
    "Order",
    "OrderItem",
    "Profile",
    "ProfileScore",
    "PushSubscription",
    "RejectedEvent",
    "ResolverState",
    "Segment",
    "SegmentDirty",
    "SegmentDue",
    "SegmentMembership",
    "SegmentState",
    "Suppression",
    "Template",
    "TemplateVersion",
    "User",
    "WebSession",
    "Workspace",
]
