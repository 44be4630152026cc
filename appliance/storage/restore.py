"""Restoring a backup file into a store directory: verify everything, then switch atomically.

Nothing of the store in ``dir`` changes until the backup has passed every check: its header
digest, the passphrase (keycheck), every chunk's MAC and the final tag, the manifest (size and
SHA-256 of the database and of every vault file, in order), then SQLCipher's page check and
SQLite's integrity check of the decrypted snapshot, and that the vault files are exactly the
objects the database lists. Everything is staged in a hidden ``.restoring-*`` folder inside
``dir`` (same filesystem, so the final renames are atomic; and the service user can always write
there), which is removed whatever happens.

Placing: vault files first (their names are random object ids, so they never collide with
another object; a file the old database does not list is an orphan that the next open removes),
then the database and header (directly for a new store, through the commit marker over an old
one). A crash before the commit point leaves the old store as it was.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from appliance.errors import (
    BackupInvalid,
    LocalText,
    StoreError,
    StoreExists,
    StoreFromFuture,
    StoreIOError,
    store_reason,
)
from appliance.storage import migrate
from appliance.storage.backup import (
    DATABASE_NAME,
    VAULT,
    Preamble,
    SectionReader,
    check_key,
    decrypt_stream,
    read_preamble,
)
from appliance.storage.connection import DRIVER_ERRORS, connect
from appliance.storage.durable import (
    PRIVATE_DIR,
    PRIVATE_FILE,
    fsync_dir,
    make_private_dir,
    replace,
    write_bytes_atomically,
)
from appliance.storage.kdf import write_header
from appliance.storage.layout import StoreLayout, finish_restore, set_aside_orphan
from appliance.storage.lock import StoreLock
from appliance.storage.vault import SUFFIX as VAULT_SUFFIX

log = logging.getLogger(__name__)

FREE_SPACE_MARGIN = 16 * 1024 * 1024


def restore_files(backup: Path, layout: StoreLayout, passphrase: bytes, *, replace_existing: bool,
                  migrations: str) -> tuple[StoreLock, bytes]:
    """Put the backup's database, header and vault files in place; returns the held store lock and the key."""
    if not backup.is_file():
        raise BackupInvalid(backup, LocalText("storage.reason.backup_missing"))
    existed = layout.is_store()
    if existed and not replace_existing:
        raise StoreExists(layout.dir)
    lock = StoreLock.acquire(layout.lock) if existed else None  # StoreBusy if the store is open
    created_dir = make_private_dir(layout.dir)
    staging = None
    try:
        _check_space(backup, layout.dir)
        staging = Path(tempfile.mkdtemp(prefix=".restoring-", dir=layout.dir))
        key, without_files = _unpack(backup, staging, passphrase, migrations)
        lock = lock or StoreLock.acquire(layout.lock)
        if layout.is_store() and not existed:  # someone created a store meanwhile
            raise StoreExists(layout.dir)
        _place(layout, staging)
    except BaseException as e:
        if lock is not None:
            lock.release()
        if created_dir:
            shutil.rmtree(layout.dir, ignore_errors=True)
        elif staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if isinstance(e, OSError):
            raise StoreIOError(layout.dir, e.strerror or str(e)) from None
        raise
    shutil.rmtree(staging, ignore_errors=True)
    missing = [i for i in without_files if not (layout.vault / (i + VAULT_SUFFIX)).is_file()]
    if missing:  # only a format-1 backup can lack them
        log.warning("the backup is of format 1 and holds no vault files: %d hosted object(s) are missing",
                    len(missing))
    log.info("restored a store from a backup")
    return lock, key


def _check_space(backup: Path, target: Path) -> None:
    """Staging needs about as much room as the backup file; refuse before writing anything."""
    need, free = backup.stat().st_size, shutil.disk_usage(target).free
    if free < need + FREE_SPACE_MARGIN:
        raise StoreIOError(target, store_reason("restore_space", need // (1 << 20) + 1, free // (1 << 20)))


def _unpack(backup: Path, staging: Path, passphrase: bytes, migrations: str) -> tuple[bytes, set[str]]:
    """Decrypt and verify the backup into ``staging``; returns the store key and the vault objects the
    database lists that the backup does not hold (only a format-1 backup has any)."""
    with open(backup, "rb") as f:
        pre = read_preamble(f, backup)
        supported = migrate.latest_version(migrations)
        if pre.schema_version > supported:
            raise StoreFromFuture(pre.schema_version, supported)
        key = pre.header.derive_key(passphrase)
        check_key(pre, key)
        if pre.version == 1:
            with _StagedFile(staging / DATABASE_NAME) as out:
                decrypt_stream(f, out, pre, key, backup)
            objects = None
        else:
            objects = _unpack_sections(f, pre, key, staging, backup)
    referenced = _verify_database(staging / DATABASE_NAME, key, pre.schema_version, backup)
    if objects is None:
        objects = set()
    elif referenced != objects:
        missing = sorted(referenced - objects)
        if missing:
            raise BackupInvalid(backup, LocalText("storage.reason.backup_lacks_vault_file", missing[0]))
        extra = sorted(objects - referenced)
        raise BackupInvalid(backup, LocalText("storage.reason.backup_extra_vault_file", extra[0]))
    write_header(staging / "node.header", pre.header)
    return key, referenced - objects


def _unpack_sections(f: BinaryIO, pre: Preamble, key: bytes, staging: Path, backup: Path) -> set[str]:
    vault = staging / "vault"
    vault.mkdir(mode=PRIVATE_DIR)

    def open_file(kind: str, name: str) -> _StagedFile:
        return _StagedFile(vault / (name + VAULT_SUFFIX) if kind == VAULT else staging / DATABASE_NAME)

    reader = SectionReader(open_file, backup)
    try:
        decrypt_stream(f, reader, pre, key, backup)
        entries = reader.finish()
    finally:
        reader.close()
    fsync_dir(vault)
    return {e.name for e in entries if e.kind == VAULT}


class _StagedFile:
    """A new private file that is fsynced when it is closed."""

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), PRIVATE_FILE)
        self._f = os.fdopen(fd, "wb")

    def write(self, data: bytes | memoryview) -> int:
        return self._f.write(data)

    def close(self) -> None:
        if not self._f.closed:
            try:
                self._f.flush()
                os.fsync(self._f.fileno())
            finally:
                self._f.close()

    def __enter__(self) -> _StagedFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _verify_database(db_path: Path, key: bytes, schema_version: int, backup: Path) -> set[str]:
    """Check the staged database; returns the vault object ids it lists."""
    try:
        conn = connect(db_path, key)
    except StoreError:
        raise BackupInvalid(backup, LocalText("storage.reason.inner_db_wrong_key")) from None
    try:
        if conn.execute("PRAGMA cipher_integrity_check").fetchall():
            raise BackupInvalid(backup, LocalText("storage.reason.inner_db_pages"))
        if conn.execute("PRAGMA integrity_check").fetchall() != [("ok",)]:
            raise BackupInvalid(backup, LocalText("storage.reason.inner_db_inconsistent"))
        if conn.execute("PRAGMA user_version").fetchone()[0] != schema_version:
            raise BackupInvalid(backup, LocalText("storage.reason.inner_db_header_mismatch"))
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'vault_object'").fetchone():
            return set()
        return {row[0] for row in conn.execute("SELECT id FROM vault_object")}
    except DRIVER_ERRORS as e:
        raise BackupInvalid(backup, LocalText("storage.reason.inner_db_unreadable", str(e))) from None
    finally:
        conn.close()


def _place(layout: StoreLayout, staging: Path) -> None:
    """Move the verified files in: vault files, then the database and header (see the module doc)."""
    finish_restore(layout)  # an earlier interrupted swap first
    _place_vault(layout, staging / "vault")
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


def _place_vault(layout: StoreLayout, staged: Path) -> None:
    layout.vault.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    if not staged.is_dir():  # a format-1 backup
        return
    for path in staged.iterdir():
        os.replace(path, layout.vault / path.name)
    fsync_dir(layout.vault)
