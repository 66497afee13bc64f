"""A background thread that repeats one unit of work, woken early by local commits.

The resolver and the segment loop both run this way: in `otklik serve` a commit in the same
process wakes them at once; work written by other processes is found by polling, backing off
from 50 ms to 1 s while there is nothing to do.
"""

from __future__ import annotations

import logging
import threading
import time

from otklik.kit.runtime import background_io

log = logging.getLogger(__name__)
FIRST_PAUSE = 0.05
LONGEST_PAUSE = 1.0


class PollingLoop:
    thread_name = "otklik-loop"

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.idle = threading.Event()

    def run_once(self) -> int:
        """Do one unit of work; return how much was done (0 when there was nothing)."""
        raise NotImplementedError

    def wake(self, *_: object) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        background_io()
        pause = FIRST_PAUSE
        while not self._stop.is_set():
            try:
                done = self.run_once()
            except Exception:
                log.exception("%s: a turn failed; retrying", self.thread_name)
                done = 0
                time.sleep(1.0)
            if done:
                self.idle.clear()
                pause = FIRST_PAUSE
                continue
            self.idle.set()
            self._wake.wait(pause)
            self._wake.clear()
            pause = min(pause * 2, LONGEST_PAUSE)
