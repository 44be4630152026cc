"""One SQLCipher database: an owner thread for writes, borrowed connections for reads.

Writes: every ``db.write(fn)`` runs ``fn(conn)`` on the database's owner thread inside one
``BEGIN IMMEDIATE … COMMIT`` (ROLLBACK and re-raise on any exception). One thread owns the
write connection, so writes are serialised without lock juggling, and a write called from inside
a write (on the owner thread) simply joins the open transaction.

Reads: ``db.read(fn)`` runs ``fn(conn)`` on the caller's thread, on a ``query_only`` connection
in one read transaction (see :mod:`appliance.storage.readpool` for the measurements behind
this). Called on the owner thread (inside a write), it uses the write connection and so sees the
transaction's own uncommitted changes.

Durability: WAL with ``synchronous = FULL`` — the WAL is fsynced at every commit. With NORMAL a
process crash loses nothing, but a power cut may roll back the last commits. The node publishes
messages and evidence checkpoints right after committing them ("save before you send"), and an
edge box does lose power, so a commit must survive one: FULL. Batch work into fewer
transactions where throughput matters. ``synchronous="NORMAL"`` exists for benchmarks and tests.

Driver errors that are really store conditions become store errors (busy → StoreBusy, disk full
or I/O → StoreIOError, corruption → StoreCorrupt); every other exception from ``fn`` (a
constraint violation, a bug, a domain error) propagates unchanged.
"""

from __future__ import annotations

import logging
import queue
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from appliance.errors import StoreCorrupt, StoreError
from appliance.storage import migrate
from appliance.storage.connection import BUSY_TIMEOUT, DRIVER_ERRORS, configure, connect, map_error, rekey_pragma
from appliance.storage.readpool import ReadPool

log = logging.getLogger(__name__)

T = TypeVar("T")

latest_version = migrate.latest_version
SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA")


class _Job:
    __slots__ = ("thunk", "result", "error", "done")

    def __init__(self, thunk: Callable[[], object]) -> None:
        self.thunk = thunk
        self.result: object = None
        self.error: BaseException | None = None
        self.done = threading.Lock()
        self.done.acquire()


def _serve(jobs: queue.SimpleQueue) -> None:
    """The owner thread's loop. Holds no reference to the Database, so an unclosed one can be collected."""
    while (job := jobs.get()) is not None:
        try:
            job.result = job.thunk()
        except BaseException as e:  # handed to the caller, never lost
            job.error = e
        finally:
            job.thunk = None  # the thunk refers to the Database; keep nothing alive while idle
            job.done.release()
            job = None


def _reraise(exc: BaseException, path: Path):
    mapped = map_error(exc, path)
    if mapped is None:
        raise exc
    raise mapped from exc


class Database:
    """An open database. Use :meth:`open`; close with :meth:`close` or a ``with`` block."""

    def __init__(self, path: Path, key: bytes | None, *, plain: bool, synchronous: str, busy_timeout: float) -> None:
        self._path = Path(path)
        self._key = key
        self._plain = plain
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._conn = None
        self._schema_version = 0
        self._closed = False
        self._after_commit: list[Callable[[], object]] | None = None  # set while a write is open
        self._submit_lock = threading.Lock()
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._pool = ReadPool(self._open_reader, key)
        self._thread = threading.Thread(target=_serve, args=(self._jobs,), name=f"dsnode-db-{self._path.stem}",
                                        daemon=True)  # an unclosed Database must not hang exit; close() joins
        self._thread.start()
        self._finalizer = weakref.finalize(self, self._jobs.put, None)

    @classmethod
    def open(cls, path: Path, key: bytes | None, *, create: bool = False, migrations: str = migrate.DEFAULT_PACKAGE,
             plain: bool = False, synchronous: str = "FULL", busy_timeout: float = BUSY_TIMEOUT) -> Database:
        """Open (or with ``create``, create) the database at ``path`` and apply pending migrations.

        ``key`` is the 32-byte raw store key. ``plain=True`` (with ``key=None``) opens an
        unencrypted stdlib-sqlite3 database through the same API: for benchmarks and tests only.
        ``busy_timeout`` is how long (seconds) to wait for another program's lock before StoreBusy.
        """
        if plain != (key is None):
            raise ValueError("give a 32-byte key, or key=None with plain=True")
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}")
        migrate.discover(migrations)  # numbering bugs fail here, before the file is touched
        db = cls(path, key, plain=plain, synchronous=synchronous, busy_timeout=busy_timeout)
        try:
            db._call(lambda: db._setup(create, migrations))
        except BaseException:
            db.close()
            raise
        return db

    # --- public API ---------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def schema_version(self) -> int:
        return self._schema_version

    @property
    def plain(self) -> bool:
        return self._plain

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, fn: Callable[..., T]) -> T:
        """Run ``fn(conn)`` in one write transaction on the owner thread; its result is returned.

        Callbacks ``fn`` registered with :meth:`after_commit` then run on the calling thread.
        """
        if threading.get_ident() == self._thread.ident:
            return fn(self._conn)  # nested: join the transaction already open
        result, callbacks = self._call(lambda: self._transaction(fn))
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("an after-commit callback failed")
        return result

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Inside a write: run ``callback`` once the transaction has committed (never if it rolls back).

        For telling others what happened (events to the GUI, the daemon): they must never see a
        state that a rollback or a crash before the commit would take back.
        """
        if threading.get_ident() != self._thread.ident or self._after_commit is None:
            raise RuntimeError("after_commit() is only for use inside a write")
        self._after_commit.append(callback)

    def read(self, fn: Callable[..., T]) -> T:
        """Run ``fn(conn)`` on a read-only connection in one consistent snapshot; its result is returned."""
        if threading.get_ident() == self._thread.ident:
            return fn(self._conn)
        try:
            return self._pool.run(fn)
        except DRIVER_ERRORS as e:
            _reraise(e, self._path)

    def checkpoint(self) -> tuple[int, int, int]:
        """Copy the WAL into the database file and truncate it; returns SQLite's (busy, log, checkpointed)."""
        return self._call(lambda: tuple(self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()))

    def integrity_problems(self) -> list[str]:
        """Check every page of the file: SQLCipher's page MACs, then SQLite's structure ([] = sound).

        The WAL is first copied into the main file, since SQLCipher's check reads only that file.
        """

        def check() -> list[str]:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            problems = []
            if not self._plain:
                problems += [" ".join(map(str, row)) for row in self._conn.execute("PRAGMA cipher_integrity_check")]
            if not problems:
                rows = [row[0] for row in self._conn.execute("PRAGMA quick_check")]
                problems += [] if rows == ["ok"] else rows
            return problems

        try:
            return self._call(check)
        except StoreCorrupt as e:
            return [e.message("en")]

    def rekey(self, new_key: bytes) -> None:
        """Re-encrypt every page under ``new_key``, in one transaction (atomic across a crash)."""
        if self._plain:
            raise ValueError("a plain database has no key")
        self._call(lambda: self._rekey(new_key))

    def close(self) -> None:
        """Stop the owner thread and close every connection. Idempotent."""
        if threading.get_ident() == self._thread.ident:
            raise RuntimeError("Database.close() called from inside a write")
        with self._submit_lock:
            if not self._closed:
                self._closed = True
                self._pool.close()
                self._jobs.put(_Job(self._close_conn))
                self._jobs.put(None)
        self._thread.join()
        self._finalizer.detach()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"schema {self._schema_version}"
        return f"<Database {str(self._path)!r} {'plain' if self._plain else 'sqlcipher'} {state}>"

    # --- owner thread -------------------------------------------------------------------------

    def _call(self, thunk: Callable[[], T]) -> T:
        if threading.get_ident() == self._thread.ident:
            raise RuntimeError("rekey() and checkpoint() cannot run inside a write")
        job = _Job(thunk)
        with self._submit_lock:
            if self._closed:
                raise RuntimeError(f"{self!r} is closed")
            self._jobs.put(job)
        job.done.acquire()
        if job.error is not None:
            _reraise(job.error, self._path)
        return job.result

    def _setup(self, create: bool, migrations: str) -> None:
        if not create and self._path.is_file() and self._path.stat().st_size == 0:
            raise StoreCorrupt(self._path, "the database file is empty")
        conn = connect(self._path, self._key, create=create, plain=self._plain, busy_timeout=self._busy_timeout)
        try:
            migrate.check_not_from_future(conn.execute("PRAGMA user_version").fetchone()[0], migrations)
            if not self._plain:
                # Zeroing freed memory costs ~5% on writes here; keys live in Python objects anyway.
                conn.execute("PRAGMA cipher_memory_security = OFF")
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            configure(conn, synchronous=self._synchronous)
            migrate.apply(conn, migrations)
            self._schema_version = conn.execute("PRAGMA user_version").fetchone()[0]
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _transaction(self, fn: Callable[..., T]) -> tuple[T, list[Callable[[], object]]]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        self._after_commit = []
        try:
            result = fn(conn)
            if not conn.in_transaction:
                raise RuntimeError("the write function ended the transaction itself (commit or executescript)")
            conn.execute("COMMIT")
            return result, self._after_commit
        except BaseException:
            self._rollback()
            raise
        finally:
            self._after_commit = None

    def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except DRIVER_ERRORS as e:  # the original exception matters more; SQLite rolls back on close
            log.warning("rollback failed: %s", e)

    def _rekey(self, new_key: bytes) -> None:
        with self._pool.rekeying() as set_key:
            self._conn.execute(rekey_pragma(new_key))
            try:
                connect(self._path, new_key).close()  # the pragma reports no errors; prove it worked
            except StoreError:
                raise StoreError("changing the store key failed; the old key still applies") from None
            set_key(new_key)
        self._key = new_key
        # Copy what can be copied now; TRUNCATE would wait for readers still on old snapshots.
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        log.info("re-encrypted %s under a new key", self._path.name)

    def _open_reader(self, key: bytes | None):
        conn = connect(self._path, key, plain=self._plain, busy_timeout=self._busy_timeout)
        configure(conn, synchronous=self._synchronous, query_only=True)
        return conn

    def _close_conn(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
