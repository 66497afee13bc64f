"""Which adapter class serves which (channel kind, provider): an explicit table."""

from __future__ import annotations

from typing import Any

from otklik.channels import (
    apns,
    fcm,
    logging_fake,
    smpp,
    sms_http,
    smtp,
    telegram,
    webhook,
    webpush,
)
from otklik.channels.base import Adapter, ChannelConfig, ChannelKind
from otklik.kit.errors import Unprocessable

ADAPTERS: dict[tuple[ChannelKind, str], type[Adapter[Any]]] = {
    (ChannelKind.EMAIL, "logging"): logging_fake.LoggingEmail,
    (ChannelKind.SMS, "logging"): logging_fake.LoggingSms,
    (ChannelKind.WEBPUSH, "logging"): logging_fake.LoggingWebPush,
    (ChannelKind.MOBILE_PUSH, "logging"): logging_fake.LoggingMobilePush,
    (ChannelKind.TELEGRAM, "logging"): logging_fake.LoggingTelegram,
    (ChannelKind.WEBHOOK, "logging"): logging_fake.LoggingWebhook,
    (ChannelKind.EMAIL, "smtp"): smtp.SmtpEmailAdapter,
    (ChannelKind.SMS, "smpp"): smpp.SmppSmsAdapter,
    (ChannelKind.SMS, "http"): sms_http.HttpSmsAdapter,
    (ChannelKind.TELEGRAM, "bot_api"): telegram.TelegramBotAdapter,
    (ChannelKind.WEBHOOK, "http"): webhook.SignedWebhookAdapter,
    (ChannelKind.WEBPUSH, "vapid"): webpush.VapidWebPushAdapter,
    (ChannelKind.MOBILE_PUSH, "fcm"): fcm.FcmPushAdapter,
    (ChannelKind.MOBILE_PUSH, "apns"): apns.ApnsPushAdapter,
}


def adapter_class(kind: ChannelKind, provider: str) -> type[Adapter[Any]]:
    try:
        return ADAPTERS[(kind, provider)]
    except KeyError:
        known = sorted(p for k, p in ADAPTERS if k == kind)
        raise Unprocessable(
            f"unknown provider {provider!r} for {kind.value}; known: {', '.join(known)}",
            code="unknown_provider",
        ) from None


def providers(kind: ChannelKind) -> list[str]:
    return sorted(p for k, p in ADAPTERS if k == kind)


def parse_config(kind: ChannelKind, provider: str, raw: dict[str, Any]) -> ChannelConfig:
    """The provider's typed config from stored JSON; pydantic errors name the field."""
    return adapter_class(kind, provider).config_class.model_validate(raw)


def build(kind: ChannelKind, provider: str, raw: dict[str, Any]) -> Adapter[Any]:
    cls = adapter_class(kind, provider)
    return cls(cls.config_class.model_validate(raw))
