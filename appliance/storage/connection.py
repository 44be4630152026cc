"""Opening one configured SQLCipher connection, and turning SQLite failures into store errors.

The key is given in SQLCipher's raw form, ``PRAGMA key = "x'<64 hex>'"``: our Argon2id output is
already a strong key, so SQLCipher skips its own PBKDF2 (256 000 iterations, ~0.1 s per
connection) and an open costs well under a millisecond. SQLCipher still reads the database's own
16-byte salt from the file to derive its HMAC key, so the raw form stays per-database.

``cipher_log_level = NONE`` is set before the key: SQLCipher 4.7+ otherwise prints "hmac check
failed" lines to stderr when the key is wrong, which users would read as a crash.

The plain (stdlib ``sqlite3``) mode exists so benchmarks and tests can compare like for like
through the same code; it is never used for a node's store.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import sqlcipher3.dbapi2 as sqlcipher

from appliance.errors import (
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreIOError,
    StoreNotFound,
    WrongPassphrase,
    store_reason,
)
from appliance.storage.durable import PRIVATE_FILE

log = logging.getLogger(__name__)

BUSY_TIMEOUT = 5.0  # seconds a statement waits for another program's lock before StoreBusy
WAL_SIZE_LIMIT = 32 * 1024 * 1024
CACHE_SIZE_KIB = 16000  # per connection, as PRAGMA cache_size = -16000 (~16 MB)
# Prepared statements kept per connection. The driver's default (100) is smaller than the number of
# distinct statements a node runs (migrations alone run more), and its cache then evicts the newest
# entry first, so two statements used in turn on a hot path (the outbox's seq query and insert)
# were parsed again on every call: 3-4x their cost.
STATEMENT_CACHE = 1024
SQLITE_MAGIC = b"SQLite format 3\x00"
MIN_PAGE_SIZE = 512

# Both drivers' exception classes, for ``except`` clauses that must catch either.
DRIVER_ERRORS: tuple[type[Exception], ...] = (sqlcipher.Error, sqlite3.Error)


def key_pragma(key: bytes) -> str:
    if len(key) != 32:
        raise ValueError("a store key is 32 bytes")
    return f"PRAGMA key = \"x'{key.hex()}'\""


def rekey_pragma(key: bytes) -> str:
    return key_pragma(key).replace("PRAGMA key", "PRAGMA rekey", 1)


def connect(path: Path, key: bytes | None, *, create: bool = False, plain: bool = False,
            busy_timeout: float = BUSY_TIMEOUT):
    """A keyed, verified connection in autocommit mode, usable from any one thread at a time.

    Raises StoreNotFound, WrongPassphrase, StoreCorrupt, StoreIOError. Touches nothing on disk
    unless ``create`` (the database file is then created if missing).
    """
    if not create and not path.exists():
        raise StoreNotFound(path)
    _owner_only(path, create)
    driver = sqlite3 if plain else sqlcipher
    uri = path.resolve().as_uri() + ("?mode=rwc" if create else "?mode=rw")
    try:
        conn = driver.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                              cached_statements=STATEMENT_CACHE)
    except DRIVER_ERRORS as e:
        raise StoreIOError(path, store_reason("cannot_open", e)) from e
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000):d}")
        if not plain:
            assert key is not None, "an encrypted store needs its key"
            conn.execute("PRAGMA cipher_log_level = NONE")
            conn.execute(key_pragma(key))
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except DRIVER_ERRORS as e:
        conn.close()
        raise classify_open_failure(path, e, plain) from None
    return conn


def _owner_only(path: Path, create: bool) -> None:
    """Make the database file owner-only (0600) before SQLite opens it: SQLite gives its journal,
    WAL and shared-memory files the main file's mode, so they are owner-only too. A store made
    before this rule had 0644 files (in a 0700 folder): they are narrowed when opened."""
    try:
        if create and not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
            return
        for p in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
            if p.exists() and p.stat().st_mode & 0o077:
                os.chmod(p, PRIVATE_FILE)
    except FileExistsError:
        pass
    except OSError as e:
        raise StoreIOError(path, store_reason("cannot_open", e)) from e


def configure(conn, *, synchronous: str, query_only: bool = False) -> None:
    """Per-connection settings (journal mode is the owner's business, see Database)."""
    conn.execute(f"PRAGMA cache_size = -{CACHE_SIZE_KIB}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA temp_store = MEMORY")  # no plaintext temp files for big sorts
    conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")  # a big transaction's WAL shrinks back
    if query_only:
        conn.execute("PRAGMA query_only = ON")


def classify_open_failure(path: Path, exc: Exception, plain: bool) -> StoreError:
    """Why the first read of a database failed: wrong key, not a database, busy, or I/O."""
    mapped = map_error(exc, path)
    if not isinstance(mapped, StoreCorrupt):
        return mapped or StoreIOError(path, str(exc))
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            start = f.read(len(SQLITE_MAGIC))
    except OSError as e:
        return StoreIOError(path, store_reason("cannot_read", e.strerror))
    if start == SQLITE_MAGIC and not plain:
        return StoreCorrupt(path, store_reason("plain_sqlite"))
    if plain or size < MIN_PAGE_SIZE or size % MIN_PAGE_SIZE:
        return StoreCorrupt(path, store_reason("not_a_database"))
    # An encrypted page 1 that does not authenticate: with SQLCipher a wrong key and a damaged
    # first page look the same. The key is by far the likelier cause.
    return WrongPassphrase()


def _error_name(exc: BaseException) -> str:
    return getattr(exc, "sqlite_errorname", None) or ""


def map_error(exc: BaseException, path: Path) -> StoreError | None:
    """The store error a driver exception stands for, or None if it is not one (a bug, a constraint)."""
    if not isinstance(exc, DRIVER_ERRORS):
        return None
    name, text = _error_name(exc), str(exc)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
        return StoreBusy()
    if name.startswith("SQLITE_FULL") or "database or disk is full" in text:
        return StoreIOError(path, store_reason("disk_full"))
    if name.startswith("SQLITE_IOERR") or "disk I/O error" in text:
        return StoreIOError(path, store_reason("io_error", name or text))
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text:
        return StoreCorrupt(path, store_reason("sqlite_reports", name or text))
    if name.startswith("SQLITE_CANTOPEN"):
        return StoreIOError(path, store_reason("cannot_be_opened"))
    return None
