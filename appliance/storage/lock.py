"""One process at a time per store: an exclusive lock on ``<store>/node.lock``.

SQLite would let two processes share the database, but a node's invariants (one owner thread
that writes, a restore that swaps files, a rekey) assume one program holds the store. The
desktop app and the daemon therefore exclude each other: the second gets StoreBusy.
The kernel drops the lock when the process dies, so a crash never leaves the store locked.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from appliance.errors import StoreBusy, StoreIOError, store_reason

log = logging.getLogger(__name__)

if sys.platform == "win32":  # pragma: no cover - exercised on Windows builds only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False


class StoreLock:
    """Held from :meth:`acquire` until :meth:`release` (or process exit)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: Path) -> StoreLock:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise StoreIOError(path.parent, store_reason("lock_file", e.strerror)) from None
        if not _try_lock(fd):
            os.close(fd)
            raise StoreBusy()
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
