"""Counting dropped messages, and logging them without letting junk from peers flood the log."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

log = logging.getLogger("appliance.services.sync")


class RateLimitedLog:
    """At most one line per key every ``interval`` seconds; the next line says how many were held back."""

    def __init__(self, interval: float = 10.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: Counter[str] = Counter()

    def warning(self, key: str, message: str, *args: object) -> bool:
        """Log ``message`` (``%`` args) at WARNING unless ``key`` logged recently; returns whether it did."""
        return self._log(logging.WARNING, key, message, *args)

    def error(self, key: str, message: str, *args: object) -> bool:
        """The same at ERROR (a bug met on input from peers)."""
        return self._log(logging.ERROR, key, message, *args)

    def _log(self, level: int, key: str, message: str, *args: object) -> bool:
        now = self._monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._held[key] += 1
                return False
            self._last[key] = now
            held = self._held.pop(key, 0)
        if held:
            message += " (and %d more like it)"
            args = (*args, held)
        log.log(level, message, *args)
        return True


class Counters:
    """Per-space counts: messages sent, received (applied), and dropped by reason."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent: Counter[str] = Counter()
        self.received: Counter[str] = Counter()
        self.dropped: dict[str, Counter[str]] = {}

    def add_sent(self, space_id: str, n: int) -> None:
        with self._lock:
            self.sent[space_id] += n

    def add_received(self, space_id: str, n: int = 1) -> None:
        with self._lock:
            self.received[space_id] += n

    def add_dropped(self, space_id: str, reason: str) -> None:
        with self._lock:
            self.dropped.setdefault(space_id, Counter())[reason] += 1

    def snapshot(self, space_id: str) -> tuple[int, int, dict[str, int]]:
        with self._lock:
            return self.sent[space_id], self.received[space_id], dict(self.dropped.get(space_id, {}))
