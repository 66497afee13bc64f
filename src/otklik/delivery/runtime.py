"""The delivery machinery of one process: queue, sender, pipeline, consumer, dispatcher."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from huey.consumer import Consumer
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from otklik.config import Settings
from otklik.delivery import repository as repo
from otklik.delivery.feedback import apply_receipts
from otklik.delivery.links import Links
from otklik.delivery.pipeline import Pipeline
from otklik.delivery.sender import Sender
from otklik.delivery.tasks import register
from otklik.kit.db import write_tx
from otklik.kit.signing import Signer
from otklik.kit.time import utc_now
from otklik.worker.dispatcher import Dispatcher
from otklik.worker.queue import make_huey, start_consumer
from otklik.worker.telegram_poller import TelegramPoller


class DeliveryRuntime:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.links = Links(Signer(settings.secret_key.get_secret_value()), settings.public_url)
        self.sender = Sender()
        lease = timedelta(seconds=settings.delivery_lease_seconds)
        self.pipeline = Pipeline(engine, self.sender, self.links, lease=lease)
        self.huey = make_huey(settings)
        self.tasks = register(self.huey, self.pipeline)
        self.dispatcher = Dispatcher(
            engine,
            self.tasks.deliver,
            lease=lease,
            batch=settings.delivery_batch,
            also=self.apply_pushed_receipts,
        )
        self.consumer: Consumer | None = None
        self.telegram = TelegramPoller(engine, self.links)

    def start(self, *, consume: bool, dispatch: bool) -> None:
        self.sender.start()
        if consume and self.consumer is None:
            self.consumer = start_consumer(
                self.huey, self.settings.delivery_workers, in_thread=True
            )
        if dispatch:
            self.dispatcher.start()
            self.telegram.start()

    def stop(self) -> None:
        self.dispatcher.stop()
        self.telegram.stop()
        if self.consumer is not None:
            self.consumer.stop(graceful=True)
            self.consumer = None
        self.sender.stop()

    def apply_pushed_receipts(self) -> int:
        """Apply receipts providers pushed over open connections (SMPP) to their messages."""
        pushed = self.sender.pushed_receipts()
        if not pushed:
            return 0
        by_channel: dict[Any, list[Any]] = {}
        for key, receipt in pushed:
            channel_id = key[0] if isinstance(key, tuple) else key
            by_channel.setdefault(channel_id, []).append(receipt)
        matched = 0
        with write_tx(self.engine) as conn:
            settings = repo.channel_settings_by_id(conn, list(by_channel))
            for channel_id, receipts in by_channel.items():
                row = settings.get(channel_id)
                if row is not None:
                    matched += apply_receipts(conn, row.workspace_id, receipts, utc_now())
        return matched

    def dispatch_after_commit(self, session: Session, ids: Sequence[uuid.UUID]) -> None:
        """Queue the messages once the session's transaction commits (never before).

        The rows were written with `dispatched_at` set, so the dispatcher leaves them alone
        for a lease; if this process dies before the task is queued, it takes them then.
        """
        wanted = list(ids)
        if wanted:
            event.listen(session, "after_commit", lambda _s: self.tasks.deliver(wanted), once=True)
