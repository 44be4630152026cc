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

    # --- kept in the store (table node_counter), so a stopped node still shows recent figures ---

    def rows(self) -> list[tuple[str, str, int]]:
        """``(space_id, name, value)`` for every count: name ``sent``, ``received`` or ``dropped:<reason>``."""
        with self._lock:
            out = [(s, "sent", n) for s, n in self.sent.items()]
            out += [(s, "received", n) for s, n in self.received.items()]
            out += [(s, f"dropped:{r}", n) for s, c in self.dropped.items() for r, n in c.items()]
        return out

    def restore(self, rows) -> None:
        """Go on from counts a previous run kept (adds to what this run has counted so far)."""
        with self._lock:
            for space_id, name, value in rows:
                if name == "sent":
                    self.sent[space_id] += value
                elif name == "received":
                    self.received[space_id] += value
                elif name.startswith("dropped:"):
                    self.dropped.setdefault(space_id, Counter())[name.removeprefix("dropped:")] += value


def load_counters(conn) -> list[tuple[str, str, int]]:
    return [tuple(r) for r in conn.execute("SELECT space_id, name, value FROM node_counter")]


def save_counters(conn, rows, ts: str) -> None:
    conn.executemany(
        "INSERT INTO node_counter (space_id, name, value, updated) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (space_id, name) DO UPDATE SET value = excluded.value, updated = excluded.updated",
        [(s, n, v, ts) for s, n, v in rows])
