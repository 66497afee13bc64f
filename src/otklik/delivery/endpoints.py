"""REST: the transactional send API, the message log, templates, channels and consent."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from sqlalchemy.orm import Session

from otklik.channels import service as channels
from otklik.channels.telegram import deep_link
from otklik.consent import double_opt_in, suppression_list
from otklik.consent import repository as consent_repo
from otklik.consent import service as consent
from otklik.delivery import repository as repo
from otklik.delivery import service
from otklik.delivery.runtime import DeliveryRuntime
from otklik.delivery.schemas import (
    AttemptOut,
    ChannelIn,
    ChannelOut,
    ConsentIn,
    ConsentOut,
    MessageDetail,
    MessageEventOut,
    MessageOut,
    PolicyIn,
    PolicyOut,
    SendIn,
    SendOut,
    SuppressionIn,
    SuppressionOut,
)
from otklik.delivery.settings import DeliverySettings
from otklik.kit.errors import NotFound, Unprocessable
from otklik.kit.nul import NO_NUL
from otklik.kit.time import iso, utc_now
from otklik.kit.web import DbSession
from otklik.profiles import service as profiles
from otklik.profiles.endpoints import scope
from otklik.profiles.schemas import Page
from otklik.profiles.service import Scope, cursor_after, page_of
from otklik.templates import service as templates
from otklik.workspaces.auth import WorkspaceId

router = APIRouter(prefix="/api/v1", tags=["delivery"])
MessageState = Literal[
    "queued", "deferred", "sending", "sent", "delivered", "opened", "clicked", "failed", "skipped"
]
ChannelName = Literal["email", "sms", "webpush", "mobile_push", "telegram", "webhook"]
Limit = Query(50, ge=1, le=500)


def runtime(request: Request) -> DeliveryRuntime:
    return request.app.state.delivery


def settings_of(session: Session, workspace_id: uuid.UUID) -> DeliverySettings:
    return service.workspace_settings(session.connection(), workspace_id)


def _newest_first_key(row: Any) -> list[Any]:
    """The cursor of lists ordered by (created_at, id) descending."""
    return [iso(row.created_at), str(row.id)]


def recipient_profile(ctx: Scope, body: SendIn) -> uuid.UUID | None:
    to = body.to
    given = [(k, v) for k, v in to.model_dump().items() if v is not None]
    if not given:
        if body.address:
            return None
        raise Unprocessable("to: give profile_id, user_id, email or phone", code="no_recipient")
    if to.profile_id is not None:
        return uuid.UUID(str(profiles.locate(ctx, to.profile_id).root.id))
    kind, value = given[0]
    found = profiles.lookup(ctx, kind, str(value))
    return uuid.UUID(str(found["id"]))


@router.post("/messages", response_model=SendOut, status_code=202)
def send_message(
    body: SendIn,
    response: Response,
    session: DbSession,
    request: Request,
    ctx: Scope = Depends(scope),
    idempotency_key: str | None = Header(default=None, max_length=200, pattern=r"^[^\x00]*$"),
) -> SendOut:
    """Queue one message now; answers 202 with its id, or 200 with the first one's id when
    the idempotency key was used before."""
    templates.get(ctx.conn, ctx.workspace_id, body.template)  # an unknown template first
    profile_id = recipient_profile(ctx, body)
    queued = service.queue(
        ctx.conn,
        ctx.workspace_id,
        service.SendIntent(
            template=body.template,
            profile_id=profile_id,
            to=body.address,
            data=body.data,
            idempotency_key=body.idempotency_key or idempotency_key,
            priority=body.priority,
            channel_config_id=body.channel_config_id,
            send_at=body.send_at,
        ),
    )
    if queued.created:
        runtime(request).dispatch_after_commit(session, [queued.id])
    else:
        response.status_code = 200
    row = repo.message(ctx.conn, ctx.workspace_id, queued.id)
    return SendOut(id=queued.id, state=row.state if row else "queued", created=queued.created)


@router.get("/messages", response_model=Page[MessageOut])
def list_messages(
    workspace_id: WorkspaceId,
    session: DbSession,
    state: MessageState | None = None,
    channel: ChannelName | None = None,
    profile_id: uuid.UUID | None = None,
    template_id: uuid.UUID | None = None,
    reason_code: str | None = Query(None, pattern=r"^[a-z0-9_]{1,48}$"),
    cursor: str | None = None,
    limit: int = Limit,
) -> Page[MessageOut]:
    rows = repo.message_page(
        session.connection(),
        workspace_id,
        filters={
            "state": state,
            "channel": channel,
            "profile_id": profile_id,
            "template_id": template_id,
            "reason_code": reason_code,
        },
        after=cursor_after(cursor, uuid.UUID),
        limit=limit + 1,
    )
    page = page_of(rows, limit, _newest_first_key, lambda r: dict(r._mapping))
    return Page[MessageOut](
        items=[MessageOut.model_validate(i) for i in page.items], next_cursor=page.next_cursor
    )


@router.get("/messages/{message_id}", response_model=MessageDetail)
def get_message(message_id: uuid.UUID, workspace_id: WorkspaceId, session: DbSession) -> Any:
    conn = session.connection()
    row = repo.message(conn, workspace_id, message_id)
    if row is None:
        raise NotFound("no such message in this workspace", code="message_not_found")
    return MessageDetail(
        **MessageOut.model_validate(row).model_dump(),
        history=[
            AttemptOut.model_validate(a, from_attributes=True)
            for a in repo.attempts_of(conn, row.id)
        ],
        events=[
            MessageEventOut.model_validate(e, from_attributes=True)
            for e in repo.events_of(conn, row.id)
        ],
    )


# ---------------------------------------------------------------- channels


def channel_out(request: Request, conn: Any, row: Any) -> ChannelOut:
    # The URL providers call must be the public one people's links use too.
    links = service.workspace_links(conn, runtime(request).links, row.workspace_id)
    return ChannelOut(
        id=row.id,
        kind=row.kind,
        provider=row.provider,
        name=row.name,
        config=channels.masked(row.kind, row.provider, row.config or {}),
        is_default=row.is_default,
        enabled=row.enabled,
        receipts_url=links.receipts(row.id),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@router.post("/channels", response_model=ChannelOut, status_code=201)
def create_channel(
    body: ChannelIn, workspace_id: WorkspaceId, session: DbSession, request: Request
) -> ChannelOut:
    conn = session.connection()
    channel_id = channels.create(conn, workspace_id, **body.model_dump())
    return channel_out(request, conn, channels.get(conn, workspace_id, channel_id))


@router.get("/channels", response_model=list[ChannelOut])
def list_channels(
    workspace_id: WorkspaceId, session: DbSession, request: Request
) -> list[ChannelOut]:
    conn = session.connection()
    return [channel_out(request, conn, r) for r in channels.listing(conn, workspace_id)]


@router.put("/channels/{channel_id}", response_model=ChannelOut)
def change_channel(
    channel_id: uuid.UUID,
    body: ChannelIn,
    workspace_id: WorkspaceId,
    session: DbSession,
    request: Request,
) -> ChannelOut:
    conn = session.connection()
    channels.change(
        conn,
        workspace_id,
        channel_id,
        config=body.config,
        name=body.name,
        is_default=body.is_default,
        enabled=body.enabled,
    )
    return channel_out(request, conn, channels.get(conn, workspace_id, channel_id))


@router.delete("/channels/{channel_id}", status_code=204)
def delete_channel(channel_id: uuid.UUID, workspace_id: WorkspaceId, session: DbSession) -> None:
    channels.remove(session.connection(), workspace_id, channel_id)


# ---------------------------------------------------------------- consent and suppression


@router.get("/profiles/{profile_id}/consents", response_model=list[ConsentOut])
def list_consents(profile_id: uuid.UUID, ctx: Scope = Depends(scope)) -> list[ConsentOut]:
    found = profiles.locate(ctx, profile_id)
    states = consent.current(consent_repo.consents_of(ctx.conn, found.members))
    return [
        ConsentOut(
            channel=c, purpose=p, topic=t, status=s.status, source=s.source, updated_at=s.updated_at
        )
        for (c, p, t), s in sorted(states.items())
    ]


@router.put("/profiles/{profile_id}/consents", response_model=list[ConsentOut])
def set_consent(
    profile_id: uuid.UUID,
    body: ConsentIn,
    session: DbSession,
    request: Request,
    ctx: Scope = Depends(scope),
) -> list[ConsentOut]:
    found = profiles.locate(ctx, profile_id)
    if body.confirm and body.status == "granted":
        if body.channel != "email" or body.purpose != "marketing" or body.topic:
            raise Unprocessable(
                "confirmation links are for email marketing consent", code="invalid_consent"
            )
        states = consent.current(consent_repo.consents_of(ctx.conn, found.members))
        granted = states.get(("email", "marketing", ""))
        if granted is None or granted.status != "granted":
            queued = double_opt_in.request_confirmation(
                ctx.conn,
                runtime(request).links,
                workspace_id=ctx.workspace_id,
                profile_id=found.root.id,
                source=body.source,
            )
            if queued.created:
                runtime(request).dispatch_after_commit(session, [queued.id])
        return list_consents(profile_id, ctx)
    consent.set_consent(
        ctx.conn,
        workspace_id=ctx.workspace_id,
        profile_id=found.root.id,
        channel=body.channel,
        purpose=body.purpose,
        topic=body.topic,
        status=body.status,
        source=body.source,
        settings=settings_of(session, ctx.workspace_id),
    )
    return list_consents(profile_id, ctx)


@router.get("/suppressions", response_model=Page[SuppressionOut])
def list_suppressions(
    workspace_id: WorkspaceId,
    session: DbSession,
    channel: Literal["email", "sms", "telegram"] | None = None,
    # NUL cannot be stored in PostgreSQL text, so it cannot be searched for either.
    q: str | None = Query(None, max_length=320, pattern=NO_NUL),
    cursor: str | None = None,
    limit: int = Limit,
) -> Page[SuppressionOut]:
    rows = consent_repo.suppression_page(
        session.connection(),
        workspace_id,
        channel=channel,
        q=q,
        after=cursor_after(cursor, uuid.UUID),
        limit=limit + 1,
    )
    page = page_of(rows, limit, _newest_first_key, lambda r: dict(r._mapping))
    return Page[SuppressionOut](
        items=[SuppressionOut.model_validate(i) for i in page.items], next_cursor=page.next_cursor
    )


@router.post("/suppressions", status_code=201)
def add_suppression(
    body: SuppressionIn, workspace_id: WorkspaceId, session: DbSession
) -> dict[str, bool]:
    conn = session.connection()
    region = _region(conn, workspace_id)
    address = suppression_list.normalise(body.channel, body.address, region)
    added = consent.suppress(conn, workspace_id, body.channel, address, body.reason, body.detail)
    return {"added": added}


def _region(conn: Any, workspace_id: uuid.UUID) -> str:
    return str(repo.workspaces(conn, [workspace_id])[workspace_id].default_region)


@router.delete("/suppressions/{channel}/{address}", status_code=204)
def remove_suppression(
    channel: Literal["email", "sms", "telegram"],
    address: str,
    workspace_id: WorkspaceId,
    session: DbSession,
) -> None:
    conn = session.connection()
    try:
        address = suppression_list.normalise(channel, address, _region(conn, workspace_id))
    except Unprocessable:
        address = address.strip()
    if "\x00" in address or not consent_repo.remove_suppression(
        conn, workspace_id, channel, address
    ):
        raise NotFound("that address is not suppressed", code="suppression_not_found")


# ---------------------------------------------------------------- settings and policies


@router.get("/delivery-settings", response_model=DeliverySettings)
def get_delivery_settings(workspace_id: WorkspaceId, session: DbSession) -> DeliverySettings:
    return settings_of(session, workspace_id)


@router.put("/delivery-settings", response_model=DeliverySettings)
def put_delivery_settings(
    body: DeliverySettings, workspace_id: WorkspaceId, session: DbSession
) -> DeliverySettings:
    repo.save_delivery_settings(session.connection(), workspace_id, body.model_dump(mode="json"))
    return body


def policy_out(row: Any) -> PolicyOut:
    return PolicyOut(
        id=row.id,
        name=row.name,
        channel=row.channel,
        purposes=[p for p in row.purposes.split(",") if p],
        max_messages=row.max_messages,
        window_seconds=row.window_seconds,
        action=row.action,
        enabled=row.enabled,
    )


@router.get("/frequency-policies", response_model=list[PolicyOut])
def list_policies(workspace_id: WorkspaceId, session: DbSession) -> list[PolicyOut]:
    return [policy_out(r) for r in repo.all_policies(session.connection(), workspace_id)]


@router.post("/frequency-policies", response_model=PolicyOut, status_code=201)
def add_policy(body: PolicyIn, workspace_id: WorkspaceId, session: DbSession) -> PolicyOut:
    policy_id = uuid.uuid4()
    values = body.model_dump()
    values["purposes"] = ",".join(sorted(set(body.purposes)))
    repo.insert_policy(
        session.connection(),
        {"id": policy_id, "workspace_id": workspace_id, "created_at": utc_now(), **values},
    )
    return PolicyOut(id=policy_id, **body.model_dump())


@router.delete("/frequency-policies/{policy_id}", status_code=204)
def remove_policy(policy_id: uuid.UUID, workspace_id: WorkspaceId, session: DbSession) -> None:
    if not repo.delete_policy(session.connection(), workspace_id, policy_id):
        raise NotFound("no such policy in this workspace", code="policy_not_found")


@router.get("/profiles/{profile_id}/telegram-link")
def telegram_link(
    profile_id: uuid.UUID,
    session: DbSession,
    request: Request,
    ctx: Scope = Depends(scope),
    channel_id: uuid.UUID | None = None,
) -> dict[str, str]:
    """The bot's deep link for this person: opening it binds their chat to the profile."""
    found = profiles.locate(ctx, profile_id)
    bots = [
        c
        for c in channels.listing(ctx.conn, ctx.workspace_id)
        if c.kind == "telegram" and c.provider == "bot_api" and c.enabled
    ]
    bot = next(
        (c for c in bots if channel_id in (None, c.id) and (c.is_default or channel_id)), None
    )
    bot = bot or (bots[0] if bots and channel_id is None else None)
    username = (bot.config or {}).get("bot_username") if bot else None
    if not username:
        raise Unprocessable(
            "set up a Telegram bot with its username first", code="telegram_not_configured"
        )
    token = runtime(request).links.telegram_start(found.root.id)
    return {"url": deep_link(str(username), token), "token": token}
