"""Read-only connections used from the caller's own thread.

Why not run reads on the owner thread like writes: handing a job to another thread and waiting
for the answer costs 40-70 µs here (two context switches), while an indexed SELECT on SQLCipher
costs 5-10 µs. In WAL mode readers never block the writer nor each other, so each reading thread
borrows a connection of its own (``query_only``) and the hop is avoided.

Every read runs in one read transaction (a consistent snapshot, even across several SELECTs).
The snapshot is started while holding the pool lock, which a rekey also holds: a reader either
has its snapshot before the rekey commits (old key, old pages: fine) or starts after it on a
connection with the new key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_IDLE = 4


class ReadPool:
    """Borrowed read connections; ``opener(key)`` makes a configured read-only connection."""

    def __init__(self, opener: Callable[[bytes | None], Any], key: bytes | None) -> None:
        self._opener = opener
        self._key = key
        self._lock = threading.Lock()
        self._idle: list[Any] = []  # sqlcipher3 connections
        self._generation = 0
        self._closed = False
        self._local = threading.local()

    def run(self, fn: Callable[[object], T]) -> T:
        conn = getattr(self._local, "conn", None)
        if conn is not None:  # a read nested in a read on this thread: same snapshot
            return fn(conn)
        conn, generation = self._checkout()
        self._local.conn = conn
        try:
            return fn(conn)
        finally:
            self._local.conn = None
            self._checkin(conn, generation)

    def _checkout(self):
        with self._lock:
            if self._closed:
                raise RuntimeError("the database is closed")
            conn = self._idle.pop() if self._idle else self._opener(self._key)
            try:
                conn.execute("BEGIN")
                conn.execute("PRAGMA schema_version")  # starts the read snapshot now
            except BaseException:
                conn.close()
                raise
            return conn, self._generation

    def _checkin(self, conn, generation: int) -> None:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except Exception:
            conn.close()
            raise
        with self._lock:
            if self._closed or generation != self._generation or len(self._idle) >= MAX_IDLE:
                conn.close()
            else:
                self._idle.append(conn)

    @contextmanager
    def rekeying(self):
        """Hold off new snapshots while the owner re-encrypts; yields a setter for the new key."""
        with self._lock:
            self._drop_idle()
            self._generation += 1

            def set_key(key: bytes) -> None:
                self._key = key

            yield set_key

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop_idle()

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
