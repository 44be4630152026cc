"""The files of a store directory, and the two multi-file switches done in it.

::

    <dir>/node.sqlite        SQLCipher database (+ -wal, -shm while open)
    <dir>/node.header        plaintext KDF header (salt, Argon2id costs); written last on create
    <dir>/node.lock          the process lock (empty)
    <dir>/vault/             encrypted chunk files
    <dir>/node.restore       present only while a restore swaps files in (see finish_restore)

A database and its header belong together. Creating a store writes the header last, so the
header's presence is what makes a directory a store. Restoring over a store stages the new pair
as ``*.restoring`` files and then creates ``node.restore``: before the marker exists, the old
store is intact; once it exists, the swap is rolled forward by whoever opens the store next.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from appliance.storage.durable import fsync_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreLayout:
    dir: Path

    @property
    def db(self) -> Path:
        return self.dir / "node.sqlite"

    @property
    def header(self) -> Path:
        return self.dir / "node.header"

    @property
    def lock(self) -> Path:
        return self.dir / "node.lock"

    @property
    def vault(self) -> Path:
        return self.dir / "vault"

    @property
    def restore_marker(self) -> Path:
        return self.dir / "node.restore"

    @property
    def db_restoring(self) -> Path:
        return self.dir / "node.sqlite.restoring"

    @property
    def header_restoring(self) -> Path:
        return self.dir / "node.header.restoring"

    def db_companions(self) -> tuple[Path, Path]:
        return self.dir / "node.sqlite-wal", self.dir / "node.sqlite-shm"

    def is_store(self) -> bool:
        return self.header.is_file() or self.restore_marker.is_file()


def finish_restore(layout: StoreLayout) -> None:
    """Roll a committed restore forward, or drop the staging of one that never committed.

    Every step is idempotent, so a crash at any point is repaired by running this again.
    Call it holding the store lock.
    """
    if not layout.restore_marker.exists():
        for stale in (layout.db_restoring, layout.header_restoring):
            stale.unlink(missing_ok=True)
        return
    if layout.db_restoring.exists():
        for companion in layout.db_companions():  # the old database's WAL must not meet the new file
            companion.unlink(missing_ok=True)
        os.replace(layout.db_restoring, layout.db)
    if layout.header_restoring.exists():
        os.replace(layout.header_restoring, layout.header)
    fsync_dir(layout.dir)
    layout.restore_marker.unlink()
    fsync_dir(layout.dir)
    log.info("finished swapping a restored store into place")


def set_aside_orphan(layout: StoreLayout) -> None:
    """A database without a header is the remains of an interrupted create: move it out of the way.

    It cannot be opened without the header's salt, but it is renamed rather than deleted.
    """
    if layout.header.exists() or not layout.db.exists():
        return
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for path in (layout.db, *layout.db_companions()):
        if path.exists():
            os.replace(path, path.with_name(f"{path.name}.orphan-{stamp}"))
    fsync_dir(layout.dir)
    log.warning("moved aside a database without a key header (an interrupted store creation)")
