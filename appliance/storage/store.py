"""The store directory of a node: its encrypted database, key header, vault, backups.

The store key is Argon2id(passphrase, header salt) and is the raw SQLCipher key; it is never
exposed. Keys for other purposes come from :meth:`Store.subkey`, which derives them from a random
32-byte secret kept *inside* the encrypted database: they stay the same when the passphrase
changes and come back with a restored backup (a subkey derived from the passphrase-based key
would silently change with every passphrase change, orphaning whatever it encrypted).
The secret lives in the table ``store_secret``, which the store layer owns.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
import shutil
from pathlib import Path

from appliance.clock import Clock, SystemClock, rfc3339
from appliance.errors import LocalText, StoreCorrupt, StoreExists, StoreNotFound, WrongPassphrase, store_reason
from appliance.storage import migrate
from appliance.storage.backup import BackupInfo, preamble, write_backup
from appliance.storage.connection import connect
from appliance.storage.database import Database
from appliance.storage.durable import make_private_dir, temp_name
from appliance.storage.kdf import KdfParams, StoreHeader, keycheck, read_header, write_header
from appliance.storage.layout import StoreLayout, finish_restore, set_aside_orphan
from appliance.storage.lock import StoreLock
from appliance.storage.restore import restore_files

log = logging.getLogger(__name__)

SECRET_TABLE = "CREATE TABLE IF NOT EXISTS store_secret (id INTEGER PRIMARY KEY CHECK (id = 1), secret BLOB NOT NULL)"


def _passphrase(value: bytes) -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise TypeError("the passphrase must be bytes")
    if not value:
        raise ValueError("the passphrase is empty")
    return bytes(value)


def _select_secret(conn) -> bytes | None:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'store_secret'").fetchone():
        return None
    row = conn.execute("SELECT secret FROM store_secret WHERE id = 1").fetchone()
    return bytes(row[0]) if row else None


def _ensure_secret(conn) -> bytes:
    conn.execute(SECRET_TABLE)
    conn.execute("INSERT OR IGNORE INTO store_secret (id, secret) VALUES (1, ?)", (secrets.token_bytes(32),))
    secret = _select_secret(conn)
    assert secret is not None
    return secret


class Store:
    """An open node store. Create with :meth:`create`, open with :meth:`open`, then :meth:`close`."""

    def __init__(self, layout: StoreLayout, db: Database, header: StoreHeader, key: bytes, lock: StoreLock) -> None:
        self._layout = layout
        self._db = db
        self._header = header
        self._key = key
        self._lock = lock
        self._secret = db.read(_select_secret) or db.write(_ensure_secret)

    # --- lifecycle ----------------------------------------------------------------------------

    @staticmethod
    def exists(dir: Path) -> bool:
        return StoreLayout(Path(dir)).is_store()

    @classmethod
    def create(cls, dir: Path, passphrase: bytes, *, kdf: KdfParams = KdfParams.default(),
               migrations: str = migrate.DEFAULT_PACKAGE) -> Store:
        """Create a new store in ``dir`` (made with mode 0700 if missing); StoreExists if there is one."""
        layout = StoreLayout(Path(dir))
        if layout.is_store():
            raise StoreExists(layout.dir)
        make_private_dir(layout.dir)
        lock = StoreLock.acquire(layout.lock)
        try:
            if layout.is_store():
                raise StoreExists(layout.dir)
            set_aside_orphan(layout)
            header = StoreHeader.new(kdf)
            key = header.derive_key(_passphrase(passphrase))
            header = dataclasses.replace(header, keychecks=(keycheck(key),))
            store = cls._create_files(layout, header, key, lock, migrations)
        except BaseException:
            lock.release()
            raise
        log.info("created a store (schema %d)", store.db.schema_version)
        return store

    @classmethod
    def _create_files(cls, layout: StoreLayout, header: StoreHeader, key: bytes, lock: StoreLock,
                      migrations: str) -> Store:
        db = Database.open(layout.db, key, create=True, migrations=migrations)
        try:
            store = cls(layout, db, header, key, lock)
            layout.vault.mkdir(mode=0o700, exist_ok=True)
            write_header(layout.header, header)  # last: from now on this directory is a store
            return store
        except BaseException:
            db.close()
            for path in (layout.db, *layout.db_companions()):
                path.unlink(missing_ok=True)
            raise

    @classmethod
    def open(cls, dir: Path, passphrase: bytes, *, migrations: str = migrate.DEFAULT_PACKAGE) -> Store:
        """Open the store in ``dir``: StoreNotFound, WrongPassphrase, StoreBusy, StoreFromFuture, StoreCorrupt."""
        layout = StoreLayout(Path(dir))
        if not layout.is_store() and not layout.db.exists():
            raise StoreNotFound(layout.dir)
        lock = StoreLock.acquire(layout.lock)
        try:
            finish_restore(layout)
            if not layout.header.exists():
                raise StoreCorrupt(layout.dir, LocalText("storage.reason.key_header_missing", "node.header"))
            key = read_header(layout.header).derive_key(_passphrase(passphrase))
            return cls._open_locked(layout, lock, key, migrations)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _open_locked(cls, layout: StoreLayout, lock: StoreLock, key: bytes, migrations: str) -> Store:
        header = read_header(layout.header)
        if not layout.db.exists():
            raise StoreCorrupt(layout.dir, LocalText("storage.reason.database_missing", "node.sqlite"))
        _remove_leftovers(layout)
        try:
            db = Database.open(layout.db, key, migrations=migrations)
        except WrongPassphrase:
            # SQLCipher cannot tell a wrong key from a damaged first page; the header's key check can
            if header.knows(key) and len(header.keychecks) == 1:
                raise StoreCorrupt(layout.db, store_reason("first_page_damaged")) from None
            raise
        try:
            store = cls(layout, db, header, key, lock)
            if header.keychecks != (keycheck(key),):  # a store made before the check, or a change finished
                header = dataclasses.replace(header, keychecks=(keycheck(key),))
                write_header(layout.header, header)
                store._header = header
        except BaseException:
            db.close()
            raise
        layout.vault.mkdir(mode=0o700, exist_ok=True)
        return store

    @classmethod
    def restore(cls, backup: Path, dir: Path, passphrase: bytes, *, replace: bool = False,
                migrations: str = migrate.DEFAULT_PACKAGE) -> Store:
        """Verify ``backup`` completely, then make it the store in ``dir`` (atomically over an old one)."""
        layout = StoreLayout(Path(dir))
        lock, key = restore_files(Path(backup), layout, _passphrase(passphrase), replace_existing=replace,
                                  migrations=migrations)
        try:
            return cls._open_locked(layout, lock, key, migrations)
        except BaseException:
            lock.release()
            raise

    def close(self) -> None:
        """Close the database and release the store lock. Idempotent."""
        self._db.close()
        self._lock.release()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {str(self._layout.dir)!r}>"

    # --- use ----------------------------------------------------------------------------------

    @property
    def db(self) -> Database:
        return self._db

    @property
    def dir(self) -> Path:
        return self._layout.dir

    @property
    def closed(self) -> bool:
        return self._db.closed

    @property
    def vault_dir(self) -> Path:
        return self._layout.vault

    @property
    def kdf(self) -> KdfParams:
        return self._header.params

    def subkey(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` (e.g. "vault"), stable across passphrase changes and restores."""
        if not purpose:
            raise ValueError("a subkey needs a purpose")
        return hashlib.blake2b(purpose.encode("utf-8"), key=self._secret, digest_size=32,
                               person=b"dsnode-subkey").digest()

    def change_passphrase(self, new_passphrase: bytes) -> None:
        """Re-encrypt the database under a key from ``new_passphrase``; atomic across a crash.

        The salt and KDF costs stay, so the header does not change and the switch is the single
        SQLCipher rekey transaction: a crash leaves the old passphrase or the new one working.
        """
        key = self._header.derive_key(_passphrase(new_passphrase))
        # both keys are named while the change is under way (a crash leaves either one working)
        during = dataclasses.replace(self._header, keychecks=(keycheck(self._key), keycheck(key)))
        write_header(self._layout.header, during)
        self._db.rekey(key)
        self._key = key
        self._header = dataclasses.replace(self._header, keychecks=(keycheck(key),))
        write_header(self._layout.header, self._header)
        log.info("changed the store passphrase")

    def backup(self, dest: Path, *, clock: Clock | None = None) -> BackupInfo:
        """Write an encrypted backup of a consistent snapshot of the database and its vault files to ``dest``."""
        dest = Path(dest)
        created = rfc3339((clock or SystemClock()).now())
        damage = self._db.integrity_problems()  # a backup of a damaged store would restore nothing
        if damage:
            raise StoreCorrupt(self._layout.db, store_reason("backup_refused", "; ".join(damage[:3])))
        snapshot = temp_name(self._layout.db, "snapshot")
        try:
            self._db.read(lambda conn: self._snapshot(conn, snapshot))
            schema = self._db.schema_version
            ad = preamble(self._header, self._key, created=created, schema_version=schema)
            objects, vault_bytes = write_backup(dest, snapshot, self._layout.vault, self._key, ad)
        finally:
            snapshot.unlink(missing_ok=True)
        log.info("wrote a store backup (%d vault files)", objects)
        return BackupInfo(path=dest, created=created, schema_version=schema, size=dest.stat().st_size,
                          vault_objects=objects, vault_bytes=vault_bytes)

    def _snapshot(self, conn, target: Path) -> None:
        """Copy the database as ``conn`` sees it into ``target``, encrypted with the same key."""
        out = connect(target, self._key, create=True)
        try:
            conn.backup(out)
            out.execute("PRAGMA journal_mode = DELETE")
        finally:
            out.close()


def _remove_leftovers(layout: StoreLayout) -> None:
    """Temporary files of a backup or restore that a crash interrupted (all encrypted)."""
    for path in layout.dir.glob(f".{layout.db.name}.snapshot-*"):
        path.unlink(missing_ok=True)
    for path in layout.dir.glob(".restoring-*"):
        shutil.rmtree(path, ignore_errors=True)
