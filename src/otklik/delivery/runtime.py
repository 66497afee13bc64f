"""The delivery machinery of one process: queue, sender, pipeline, consumer, dispatcher."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from huey.consumer import Consumer
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from otklik.config import Settings
from otklik.delivery.links import Links
from otklik.delivery.pipeline import Pipeline
from otklik.delivery.sender import Sender
from otklik.delivery.tasks import register
from otklik.kit.signing import Signer
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
            engine, self.tasks.deliver, lease=lease, batch=settings.delivery_batch
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

    def dispatch_after_commit(self, session: Session, ids: Sequence[uuid.UUID]) -> None:
        """Queue the messages once the session's transaction commits (never before).

        The rows were written with `dispatched_at` set, so the dispatcher leaves them alone
        for a lease; if this process dies before the task is queued, it takes them then.
        """
        wanted = list(ids)
        if wanted:
            event.listen(session, "after_commit", lambda _s: self.tasks.deliver(wanted), once=True)
