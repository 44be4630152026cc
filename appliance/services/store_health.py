"""A running node checks its store file now and then: every page's MAC and SQLite's structure.

A damaged page is otherwise found only when something reads it, and perhaps never by the
commands people run most (a list or a search may skip it). The check runs soon after the node
starts and then every ``interval`` seconds, on its own thread; damage is logged as an error and
announced with :class:`StoreDamaged` on the event bus (the app shows it, the daemon's log has it),
so a user learns it before relying on the data or taking a backup of it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from appliance.events import EventBus
from appliance.storage.database import Database

log = logging.getLogger(__name__)

DAY = 24 * 3600.0


@dataclass(frozen=True)
class StoreDamaged:
    problems: tuple[str, ...]


class StoreHealth:
    def __init__(self, db: Database, bus: EventBus, *, first: float = 60.0, interval: float = DAY) -> None:
        self._db, self._bus = db, bus
        self._first, self._interval = first, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_problems: tuple[str, ...] | None = None  # None: not checked yet

    def check(self) -> tuple[str, ...]:
        problems = tuple(self._db.integrity_problems())
        self.last_problems = problems
        if problems:
            log.error("the store file is damaged (%s): restore it from a backup", "; ".join(problems[:3]))
            self._bus.emit(StoreDamaged(problems))
        return problems

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="dsnode-store-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        wait = self._first
        while not self._stop.wait(wait):
            try:
                self.check()
            except Exception:  # a closed store at shutdown, or a bug: try again next time
                if self._stop.is_set():
                    return
                log.exception("the store check failed")
            wait = self._interval
