"""The demo shop's messaging: providers that only log, templates, consent and a few sends.

Every provider is the `logging` one, so the demo sends nothing anywhere; the message log,
the customer cards and the template editor still have real content to show.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, insert, select

from otklik.channels import service as channels
from otklik.config import Settings
from otklik.delivery import feedback
from otklik.delivery import repository as delivery_repo
from otklik.delivery.links import Links
from otklik.delivery.pipeline import Pipeline
from otklik.delivery.sender import Sender
from otklik.delivery.service import SendIntent, queue_many
from otklik.kit.db import read_tx, write_tx
from otklik.kit.signing import Signer
from otklik.kit.time import utc_now
from otklik.models import Consent, FrequencyPolicy, Profile
from otklik.templates import service as templates

WELCOME = """<mjml>
  <mj-head><mj-attributes><mj-all font-family="Arial, sans-serif" /></mj-attributes></mj-head>
  <mj-body background-color="#f4f4f4">
    <mj-section background-color="#ffffff">
      <mj-column>
        <mj-text font-size="22px">Здравствуйте, {{ profile.first_name|default('друг') }}!</mj-text>
        <mj-text>Спасибо, что вы с нами. Вот что нового в {{ workspace.name }}:</mj-text>
        <mj-button href="https://shop.example/new?utm_source=email&utm_campaign=welcome">
          Смотреть новинки
        </mj-button>
        <mj-text font-size="12px" color="#888">
          <a href="{{ preferences_url }}">Настроить рассылки</a> ·
          <a href="{{ unsubscribe_url }}">Отписаться</a>
        </mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>"""

TEMPLATES: list[dict[str, Any]] = [
    {
        "key": "welcome",
        "name": "Welcome email",
        "channel": "email",
        "purpose": "marketing",
        "topic": "news",
        "content": {
            "subject": "{{ profile.first_name|default('Друг') }}, добро пожаловать!",
            "body": WELCOME,
            "body_format": "mjml",
        },
    },
    {
        "key": "order-confirmation",
        "name": "Order confirmation",
        "channel": "email",
        "purpose": "transactional",
        "topic": "",
        "content": {
            "subject": "Заказ {{ data.order_id }} принят",
            "body": (
                "<p>Заказ <b>{{ data.order_id }}</b> на {{ data.total|money }} принят.</p>"
                '<p><a href="https://shop.example/orders/{{ data.order_id }}">Статус заказа</a></p>'
            ),
            "body_format": "html",
        },
    },
    {
        "key": "order-shipped-sms",
        "name": "Order shipped (SMS)",
        "channel": "sms",
        "purpose": "transactional",
        "topic": "",
        "content": {
            "text": "Заказ {{ data.order_id }} передан в доставку. Ваш {{ workspace.name }}"
        },
    },
    {
        "key": "sale-telegram",
        "name": "Weekend sale (Telegram)",
        "channel": "telegram",
        "purpose": "marketing",
        "topic": "sales",
        "content": {
            "text": "Скидки до 30% на выходных!",
            "buttons": [[{"text": "В магазин", "url": "https://shop.example/sale"}]],
        },
    },
]


def load_messaging(engine: Engine, settings: Settings, workspace_id: uuid.UUID, seed: int) -> int:
    """Set the workspace up and send a few messages through the real pipeline; returns sent."""
    rng = random.Random(seed)
    now = utc_now()
    with write_tx(engine) as conn:
        delivery_repo.save_delivery_settings(
            conn,
            workspace_id,
            {
                "topics": [
                    {"key": "news", "name": "Новости и новинки"},
                    {"key": "sales", "name": "Распродажи и скидки"},
                ],
                "public_url": settings.public_url,
            },
        )
        for kind in ("email", "sms", "telegram", "webpush"):
            channels.create(
                conn,
                workspace_id,
                kind=kind,
                provider="logging",
                name=f"Demo {kind} (log only)",
                config={},
                is_default=True,
                enabled=True,
            )
        for spec in TEMPLATES:
            templates.create(conn, workspace_id, templates.TemplateIn(**spec), author="demo")
        conn.execute(
            insert(FrequencyPolicy).values(
                id=uuid.uuid4(),
                workspace_id=workspace_id,
                name="3 marketing messages a week",
                channel=None,
                purposes="marketing",
                max_messages=3,
                window_seconds=7 * 86400,
                action="defer",
                enabled=True,
                created_at=now,
            )
        )
        people = list(
            conn.execute(
                select(Profile.id, Profile.email).where(
                    Profile.workspace_id == workspace_id,
                    Profile.merged_into.is_(None),
                    Profile.email.is_not(None),
                )
            )
        )
        consents = []
        for pid, _ in people:
            roll = rng.random()
            if roll < 0.8:
                consents.append(
                    {
                        "id": uuid.uuid4(),
                        "workspace_id": workspace_id,
                        "profile_id": pid,
                        "channel": "email",
                        "purpose": "marketing",
                        "topic": "",
                        "status": "granted" if roll < 0.72 else "denied",
                        "source": "demo_signup",
                        "updated_at": now - timedelta(days=rng.randint(1, 300)),
                    }
                )
        if consents:
            conn.execute(insert(Consent), consents)
        chosen = rng.sample(people, min(len(people), 120))
        split = len(chosen) * 2 // 3
        intents = [
            SendIntent(template="welcome", profile_id=pid, source="campaign", source_ref="demo")
            for pid, _ in chosen[:split]
        ] + [
            SendIntent(
                template="order-confirmation",
                profile_id=pid,
                data={"order_id": f"D-{1000 + n}", "total": rng.randint(500, 9000)},
            )
            for n, (pid, _) in enumerate(chosen[split:])
        ]
        ids = [q.id for q in queue_many(conn, workspace_id, intents)]
    links = Links(Signer(settings.secret_key.get_secret_value()), settings.public_url)
    sender = Sender()
    sender.start()
    try:
        outcome = Pipeline(engine, sender, links).process(ids)
    finally:
        sender.stop()
    _engagement(engine, ids, rng)
    return outcome.sent


def _engagement(engine: Engine, ids: list[uuid.UUID], rng: random.Random) -> None:
    """Some people open, a few click: the log and the timelines show the whole story."""
    with read_tx(engine) as conn:
        sent = [r for r in (delivery_repo.message_by_id(conn, i) for i in ids) if r and r.sent_at]
    with write_tx(engine) as conn:
        for row in sent:
            if rng.random() < 0.45:
                when = row.sent_at + timedelta(minutes=rng.randint(2, 600))
                feedback.record_open(conn, row.id, when, "demo")
                if rng.random() < 0.3:
                    url = "https://shop.example/new?utm_source=email&utm_campaign=welcome"
                    feedback.record_click(conn, row.id, url, when + timedelta(seconds=40), "demo")
