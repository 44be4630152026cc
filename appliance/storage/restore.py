"""Restoring a backup file into a store directory: verify everything, then switch atomically.

Nothing of the store in ``dir`` changes until the backup has passed every check: its header
digest, the passphrase (keycheck), every chunk's MAC and the final tag, then SQLCipher's page
check and SQLite's integrity check of the decrypted snapshot. The snapshot is staged in a hidden
``.restoring-*`` folder inside ``dir`` (same filesystem, so the final renames are atomic; and the
service user can always write there), which is removed whatever happens.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from appliance.errors import BackupInvalid, StoreError, StoreExists, StoreFromFuture
from appliance.storage import migrate
from appliance.storage.backup import check_key, decrypt_stream, read_preamble
from appliance.storage.connection import DRIVER_ERRORS, connect
from appliance.storage.durable import PRIVATE_FILE, fsync_dir, make_private_dir, replace, write_bytes_atomically
from appliance.storage.kdf import write_header
from appliance.storage.layout import StoreLayout, finish_restore, set_aside_orphan
from appliance.storage.lock import StoreLock

log = logging.getLogger(__name__)


def restore_files(backup: Path, layout: StoreLayout, passphrase: bytes, *, replace_existing: bool,
                  migrations: str) -> tuple[StoreLock, bytes]:
    """Put the backup's database and header in place; returns the held store lock and the key."""
    if not backup.is_file():
        raise BackupInvalid(backup, "the file does not exist")
    existed = layout.is_store()
    if existed and not replace_existing:
        raise StoreExists(layout.dir)
    lock = StoreLock.acquire(layout.lock) if existed else None  # StoreBusy if the store is open
    created_dir = make_private_dir(layout.dir)
    staging = Path(tempfile.mkdtemp(prefix=".restoring-", dir=layout.dir))
    try:
        key = _unpack(backup, staging, passphrase, migrations)
        lock = lock or StoreLock.acquire(layout.lock)
        if layout.is_store() and not existed:  # someone created a store meanwhile
            raise StoreExists(layout.dir)
        _place(layout, staging)
    except BaseException:
        if lock is not None:
            lock.release()
        shutil.rmtree(layout.dir if created_dir else staging, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    log.info("restored a store from a backup")
    return lock, key


def _unpack(backup: Path, staging: Path, passphrase: bytes, migrations: str) -> bytes:
    """Decrypt and verify the backup into ``staging``; returns the store key."""
    with open(backup, "rb") as f:
        pre = read_preamble(f, backup)
        supported = migrate.latest_version(migrations)
        if pre.schema_version > supported:
            raise StoreFromFuture(pre.schema_version, supported)
        key = pre.header.derive_key(passphrase)
        check_key(pre, key)
        db_path = staging / "node.sqlite"
        fd = os.open(db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), PRIVATE_FILE)
        with os.fdopen(fd, "wb") as out:
            decrypt_stream(f, out, pre, key, backup)
            out.flush()
            os.fsync(out.fileno())
    _verify_database(db_path, key, pre.schema_version, backup)
    write_header(staging / "node.header", pre.header)
    return key


def _verify_database(db_path: Path, key: bytes, schema_version: int, backup: Path) -> None:
    try:
        conn = connect(db_path, key)
    except StoreError:
        raise BackupInvalid(backup, "the database inside does not open with its key") from None
    try:
        if conn.execute("PRAGMA cipher_integrity_check").fetchall():
            raise BackupInvalid(backup, "pages of the database inside fail their check")
        if conn.execute("PRAGMA integrity_check").fetchall() != [("ok",)]:
            raise BackupInvalid(backup, "the database inside is inconsistent")
        if conn.execute("PRAGMA user_version").fetchone()[0] != schema_version:
            raise BackupInvalid(backup, "the database inside does not match its header")
    except DRIVER_ERRORS as e:
        raise BackupInvalid(backup, f"the database inside cannot be read ({e})") from None
    finally:
        conn.close()


def _place(layout: StoreLayout, staging: Path) -> None:
    """Move the verified pair in: directly for a new store, through the marker over an old one."""
    finish_restore(layout)  # an earlier interrupted swap first
    if layout.is_store():
        os.replace(staging / "node.sqlite", layout.db_restoring)
        os.replace(staging / "node.header", layout.header_restoring)
        fsync_dir(layout.dir)
        write_bytes_atomically(layout.restore_marker, b"restore in progress\n")  # the commit point
        finish_restore(layout)
    else:
        set_aside_orphan(layout)
        for companion in layout.db_companions():
            companion.unlink(missing_ok=True)
        os.replace(staging / "node.sqlite", layout.db)
        replace(staging / "node.header", layout.header)  # the header last: now it is a store
    layout.vault.mkdir(mode=0o700, exist_ok=True)
