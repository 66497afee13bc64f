"""The add/edit form of a channel provider, generated from the provider's config model.

Every field of the pydantic model becomes an input by its type: text, number, yes/no, a
choice (Literal), lines (list), `name: value` lines (dict) and secrets. Secrets are only ever
shown as the mask; a masked value posted back stands for the stored one.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import SecretStr, ValidationError
from pydantic.fields import FieldInfo
from starlette.datastructures import FormData

from otklik.channels import registry
from otklik.channels import service as channels
from otklik.channels.base import ChannelConfig, ChannelKind
from otklik.kit.errors import AppError
from otklik.web.notices import N_

MASK = channels.MASK
BASE_FIELDS = frozenset(ChannelConfig.model_fields)
# Secrets too long for one line (a service-account JSON, a .p8 key): a textarea, not a password.
MULTILINE_SECRETS = frozenset({"service_account_json", "auth_key"})
FIELD_REQUIRED = N_("This field is required.")
BAD_PAIR = N_("Line %(line)s: write it as name: value.")

HINTS: dict[str, str] = {
    "rate_per_second": N_("Empty: the provider's usual rate."),
    "timeout_seconds": N_("How long to wait for the provider on each call."),
    "port": N_("Empty: the usual port for the security mode (25, 587 or 465)."),
    "security": N_(
        "starttls upgrades a plain connection (usually port 587); tls is encrypted "
        "from the start (usually port 465)."
    ),
    "from_address": N_("The sender's address, e.g. shop@example.com."),
    "message_id_domain": N_("Empty: the domain of the sender's address."),
    "local_hostname": N_("The name sent in EHLO; empty asks the operating system."),
    "fail_addresses": N_("One address a line: messages to these fail (to try the pipeline)."),
    "gone_addresses": N_("One address a line: these are treated as gone and suppressed."),
    "retry_addresses": N_("One address a line: these ask for a retry later."),
    "bot_token": N_("From @BotFather, e.g. 123456:ABC-DEF1234ghIkl."),
    "bot_username": N_("“Check bot token” fills it in; used for deep links to the bot."),
    "webhook_secret": N_("Telegram sends it back with every update (A-Z, a-z, 0-9, _ and -)."),
    "vapid_public_key": N_("The site's push script passes it to PushManager.subscribe."),
    "vapid_subject": N_("mailto:ops@shop.example or an https URL push services may contact."),
    "secret": N_("At least 16 characters; every request carries an HMAC signature made with it."),
    "headers": N_("One header a line, as Name: value. The values are kept secret."),
    "extra_fields": N_("One field a line, as name: value."),
    "secret_fields": N_("One field a line, as name: value. The values are kept secret."),
    "service_account_json": N_("The contents of the Firebase service account key file."),
    "auth_key": N_("The contents of the .p8 key file from Apple."),
}


# Labels of config fields (all providers' configs share one namespace of field names). A field
# not listed here falls back to its humanised name, which is not translated.
FIELD_LABELS: dict[str, str] = {
    # ChannelConfig (every provider)
    "rate_per_second": N_("Messages per second"),
    "timeout_seconds": N_("Timeout, seconds"),
    # LoggingConfig
    "fail_addresses": N_("Addresses that fail"),
    "gone_addresses": N_("Addresses that are gone"),
    "retry_addresses": N_("Addresses to retry"),
    # SmtpConfig
    "host": N_("Host"),
    "port": N_("Port"),
    "security": N_("Security"),
    "username": N_("Username"),
    "password": N_("Password"),
    "from_address": N_("From address"),
    "from_name": N_("From name"),
    "reply_to": N_("Reply-to address"),
    "message_id_domain": N_("Message-ID domain"),
    "pool_size": N_("Connection pool size"),
    "max_messages_per_connection": N_("Messages per connection"),
    "validate_certs": N_("Verify TLS certificates"),
    "local_hostname": N_("Local host name"),
    # SmppConfig
    "system_id": N_("System ID"),
    "system_type": N_("System type"),
    "source_addr": N_("Sender (source address)"),
    "source_addr_ton": N_("Source address TON"),
    "source_addr_npi": N_("Source address NPI"),
    "registered_delivery": N_("Request delivery receipts"),
    "enquire_link_seconds": N_("Enquire link interval, seconds"),
    "default_region": N_("Default region"),
    # HttpSmsConfig
    "url": N_("URL"),
    "method": N_("HTTP method"),
    "body_format": N_("Request body format"),
    "auth": N_("Authentication"),
    "token": N_("Token"),
    "extra_fields": N_("Extra fields"),
    "secret_fields": N_("Secret fields"),
    "to_field": N_("Recipient field"),
    "text_field": N_("Text field"),
    "sender_field": N_("Sender field"),
    "reference_field": N_("Reference field"),
    "sender": N_("Sender"),
    "phone_format": N_("Phone number format"),
    "message_id_path": N_("Message ID path in the response"),
    "ok_path": N_("Success flag path in the response"),
    "ok_values": N_("Success flag values"),
    "success_statuses": N_("Success HTTP statuses"),
    "receipt_format": N_("Delivery receipt format"),
    "receipt_id_field": N_("Receipt message ID field"),
    "receipt_status_field": N_("Receipt status field"),
    "receipt_reason_field": N_("Receipt error field"),
    "receipt_statuses": N_("Receipt statuses"),
    "permanent_statuses": N_("Permanent failure statuses"),
    # TelegramConfig
    "bot_token": N_("Bot token"),
    "api_base": N_("API base URL"),
    "bot_username": N_("Bot username"),
    "webhook_secret": N_("Webhook secret"),
    "parse_mode": N_("Formatting mode"),
    "updates": N_("Receiving updates"),
    # WebhookConfig
    "secret": N_("Signing secret"),
    "headers": N_("Headers"),
    "max_body_bytes": N_("Maximum body size, bytes"),
    # WebPushConfig
    "vapid_private_key": N_("VAPID private key"),
    "vapid_public_key": N_("VAPID public key"),
    "vapid_subject": N_("VAPID subject"),
    "ttl_seconds": N_("Time to live, seconds"),
    "urgency": N_("Urgency"),
    # FcmConfig
    "project_id": N_("Project ID"),
    "service_account_json": N_("Service account key (JSON)"),
    "token_uri": N_("Token URI"),
    # ApnsConfig
    "team_id": N_("Team ID"),
    "key_id": N_("Key ID"),
    "auth_key": N_("Auth key (.p8)"),
    "topic": N_("Topic (bundle ID)"),
    "environment": N_("Environment"),
    "push_type": N_("Push type"),
}


@dataclass(frozen=True)
class Problem:
    """A message beside a field: one of ours (translated) or the provider's own (as it is)."""

    text: str
    translate: bool = True
    params: dict[str, Any] = field(default_factory=dict)


def theirs(text: str) -> Problem:
    """A message from the provider's model or service: English, shown as it is."""
    return Problem(FIELD_REQUIRED) if text == "Field required" else Problem(text, False)


@dataclass(frozen=True)
class FormField:
    name: str
    widget: str  # text, number, secret, secret_text, checkbox, select, lines, pairs, secret_pairs
    required: bool
    nullable: bool
    default: Any
    choices: tuple[str, ...] = ()
    numeric: str = ""  # "int" or "float", for numbers and lines of numbers
    hint: Problem | None = None
    advanced: bool = False

    @property
    def label(self) -> str:
        """A marked text (translated where shown), else the humanised field name."""
        return FIELD_LABELS.get(self.name) or self.name.replace("_", " ").capitalize()

    @property
    def optional(self) -> bool:
        """May be left empty (fields with a real default come filled in instead)."""
        return not self.required and (self.nullable or self.default in (None, "", [], {}))

    @property
    def default_text(self) -> str:
        """The default as a hint, when there is one worth saying (never for a secret)."""
        value = self.default
        if self.required or self.secret or self.widget == "checkbox" or value in (None, ""):
            return ""
        if isinstance(value, dict):
            return ", ".join(f"{k}: {v}" for k, v in value.items())
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return str(value)

    @property
    def secret(self) -> bool:
        return self.widget in ("secret", "secret_text", "secret_pairs")


def _mentions_secret(tp: Any) -> bool:
    return tp is SecretStr or any(_mentions_secret(a) for a in get_args(tp))


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """The type inside `X | None`, and whether None is allowed."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], len(args) < len(get_args(tp))
    return tp, False


def _numeric(tp: Any) -> str:
    return "int" if tp is int else "float" if tp is float else ""


def form_field(name: str, info: FieldInfo) -> FormField:
    tp, nullable = _unwrap(info.annotation)
    origin = get_origin(tp)
    widget, numeric = "text", ""
    choices: tuple[str, ...] = ()
    if tp is bool:
        widget = "checkbox"
    elif tp in (int, float):
        widget, numeric = "number", _numeric(tp)
    elif tp is SecretStr:
        widget = "secret_text" if name in MULTILINE_SECRETS else "secret"
    elif origin is Literal:
        widget, choices = "select", tuple(str(v) for v in get_args(tp))
    elif origin is list:
        widget, numeric = "lines", _numeric(get_args(tp)[0])
    elif origin is dict:
        widget = "secret_pairs" if _mentions_secret(get_args(tp)[1]) else "pairs"
    elif _mentions_secret(tp):  # any other shape holding a secret is still never shown
        widget = "secret"
    required = info.is_required()
    default = None if required else info.get_default(call_default_factory=True)
    hint = Problem(info.description, False) if info.description else None
    if name in HINTS:
        hint = Problem(HINTS[name])
    return FormField(
        name, widget, required, nullable, default, choices, numeric, hint, name in BASE_FIELDS
    )


def fields_of(kind: str, provider: str) -> list[FormField]:
    config_class = registry.adapter_class(ChannelKind(kind), provider).config_class
    found = [form_field(name, info) for name, info in config_class.model_fields.items()]
    return [f for f in found if not f.advanced] + [f for f in found if f.advanced]


def shown(f: FormField, value: Any) -> Any:
    """A config value as the form shows it; secrets only ever as the mask."""
    if f.widget == "checkbox":
        return bool(value)
    if value is None or isinstance(value, SecretStr):
        return ""
    if f.secret:
        if isinstance(value, dict):
            return "\n".join(f"{k}: {MASK}" for k in value)
        return MASK
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def initial_values(fields: list[FormField], stored: dict[str, Any] | None) -> dict[str, Any]:
    if stored is None:
        return {f.name: "" if f.secret else shown(f, f.default) for f in fields}
    return {f.name: shown(f, stored.get(f.name, f.default)) for f in fields}


def _number(text: str, numeric: str) -> Any:
    # Left as text when it is not a number: the provider's model then names the field.
    try:
        return int(text) if numeric == "int" else float(text.replace(",", "."))
    except ValueError:
        return text


def _pairs(raw: str) -> tuple[dict[str, str], Problem | None]:
    out: dict[str, str] = {}
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            return {}, Problem(BAD_PAIR, params={"line": number})
        out[key.strip()] = value.strip()
    return out, None


def read_config(
    fields: list[FormField], form: FormData
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Problem]]:
    """The config the form describes, the values to show again, and problems found."""
    config: dict[str, Any] = {}
    values: dict[str, Any] = {}
    problems: dict[str, Problem] = {}
    for f in fields:
        key = f"config.{f.name}"
        if f.widget == "checkbox":
            config[f.name] = values[f.name] = key in form
            continue
        raw = form.get(key)
        text = raw.strip() if isinstance(raw, str) else ""
        values[f.name] = text
        if f.widget in ("lines", "pairs", "secret_pairs"):
            if f.widget == "lines":
                lines = [line.strip() for line in text.splitlines() if line.strip()]
                config[f.name] = [_number(line, f.numeric) if f.numeric else line for line in lines]
            else:
                pairs, problem = _pairs(text)
                config[f.name] = pairs
                if problem:
                    problems[f.name] = problem
        elif not text:
            if f.nullable:
                config[f.name] = None
            # Otherwise left out: the default applies, or the model says it is required.
        elif f.widget == "number":
            config[f.name] = _number(text, f.numeric)
        else:
            config[f.name] = text
    return config, values, problems


def scrub(text: str, *configs: dict[str, Any]) -> str:
    """A provider's error text with any secret it might quote blotted out."""
    for config in configs:
        for value in config.values():
            candidates = value.values() if isinstance(value, dict) else [value]
            for secret in candidates:
                if isinstance(secret, str) and len(secret) >= 4 and secret != MASK:
                    text = text.replace(secret, "***")
    return text


def secrets_of(fields: list[FormField], config: dict[str, Any]) -> dict[str, Any]:
    return {f.name: config.get(f.name) for f in fields if f.secret}


def problems_of(exc: AppError | ValidationError, fields: list[FormField]) -> dict[str, Problem]:
    if isinstance(exc, ValidationError):
        details: Any = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
    else:
        details = exc.details if isinstance(exc.details, list) else []
    names = {f.name for f in fields}
    out: dict[str, Problem] = {}
    for item in details:
        root = str(item.get("field", "")).split(".")[0]
        out.setdefault(root if root in names else "_general", theirs(str(item.get("message"))))
    if not out:
        out["_general"] = theirs(exc.message if isinstance(exc, AppError) else str(exc))
    return out
