"""Long-polls getUpdates for Telegram bots configured with `updates = "polling"`.

For installs with no public https URL (the embedded mode on a laptop or behind NAT):
Telegram cannot call a webhook, so a thread asks it. The last confirmed update id is kept in
memory only: after a restart Telegram re-sends unconfirmed updates, and applying an update
twice is harmless (binding and blocking are idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from sqlalchemy import Engine

from otklik.channels.base import ChannelKind
from otklik.channels.registry import build
from otklik.channels.telegram import TelegramApiError, TelegramBotAdapter
from otklik.delivery import repository as repo
from otklik.delivery.links import Links
from otklik.delivery.telegram_binding import handle_update
from otklik.kit.db import read_tx, write_tx

log = logging.getLogger(__name__)


class TelegramPoller:
    def __init__(self, engine: Engine, links: Links, *, wait: int = 25, idle: float = 5.0) -> None:
        self.engine = engine
        self.links = links
        self.wait = wait
        self.idle = idle
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._offsets: dict[Any, int] = {}

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="otklik-telegram", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.wait + 5)
            self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            while not self._stop.is_set():
                bots = self._bots()
                if not bots:
                    self._stop.wait(self.idle)
                    continue
                for row in bots:
                    try:
                        loop.run_until_complete(self.poll_once(row))
                    except TelegramApiError as exc:
                        log.warning("telegram polling for %s: %s", row.name, exc.message)
                        self._stop.wait(self.idle)
                    except Exception:
                        log.exception("telegram polling for %s", row.name)
                        self._stop.wait(self.idle)
        finally:
            loop.close()

    def _bots(self) -> list[Any]:
        with read_tx(self.engine) as conn:
            return [
                r
                for r in repo.telegram_settings(conn)
                if r.enabled and (r.config or {}).get("updates") == "polling"
            ]

    async def poll_once(self, row: Any) -> int:
        """One getUpdates round for one bot; returns how many updates it applied."""
        adapter = build(ChannelKind.TELEGRAM, row.provider, row.config)
        assert isinstance(adapter, TelegramBotAdapter)
        try:
            updates = await adapter.get_updates(self._offsets.get(row.id), timeout=self.wait)
        finally:
            await adapter.aclose()
        if updates:
            with write_tx(self.engine) as conn:
                for update in updates:
                    handle_update(conn, self.links, row.workspace_id, update)
            self._offsets[row.id] = max(int(u.get("update_id", 0)) for u in updates) + 1
        return len(updates)
