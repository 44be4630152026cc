"""One SQLCipher database: an owner thread for writes, borrowed connections for reads.

Writes: every ``db.write(fn)`` runs ``fn(conn)`` on the database's owner thread inside one
``BEGIN IMMEDIATE … COMMIT`` (ROLLBACK and re-raise on any exception). One thread owns the
write connection, so writes are serialised without lock juggling, and a write called from inside
a write (on the owner thread) simply joins the open transaction.

Group commit: write jobs that are already queued when the owner thread takes one run together in
one transaction, each inside its own savepoint, and commit with one fsync. Each ``db.write`` stays
atomic (a failing ``fn`` rolls back only its own savepoint and raises to its own caller) and
returns only after the commit; what changes is that concurrent writers (a sync link applying
messages, a caller's use-case, the outbox committer) share the commit's fsync instead of queueing
one fsync each. A store failure that ends the transaction (disk full, I/O) fails every write of the
group, since none of them committed.

Reads: ``db.read(fn)`` runs ``fn(conn)`` on the caller's thread, on a ``query_only`` connection
in one read transaction (see :mod:`appliance.storage.readpool` for the measurements behind
this). Called on the owner thread (inside a write), it uses the write connection and so sees the
transaction's own uncommitted changes.

Durability: WAL with ``synchronous = FULL`` — the WAL is fsynced at every commit. With NORMAL a
process crash loses nothing, but a power cut may roll back the last commits. The node publishes
messages and evidence checkpoints right after committing them ("save before you send"), and an
edge box does lose power, so a commit must survive one: FULL. Batch work into fewer
transactions where throughput matters. ``synchronous="NORMAL"`` exists for benchmarks and tests.
A write whose loss in a power cut is harmless because it is redone (``write(fn, durable=False)``:
marking published messages sent; at worst they are published again and receivers drop the
duplicates) commits without waiting for the disk when every write of its group is such; the next
durable commit (or checkpoint) takes it to the disk.

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
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from appliance.errors import LocalText, StoreCorrupt, StoreError, store_reason
from appliance.storage import migrate
from appliance.storage.connection import BUSY_TIMEOUT, DRIVER_ERRORS, configure, connect, map_error, rekey_pragma
from appliance.storage.readpool import ReadPool

log = logging.getLogger(__name__)

T = TypeVar("T")

latest_version = migrate.latest_version
SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA")


MAX_GROUP = 64  # most queued writes committed together (see "Group commit")
_SAVEPOINT = "dsnode_write"
_INNER_SAVEPOINT = "dsnode_inner"


class _Job:
    __slots__ = ("thunk", "write", "durable", "result", "error", "done", "callbacks")

    def __init__(self, thunk: Callable[..., object], write: Callable[..., object] | None = None,
                 durable: bool = True) -> None:
        # both dropped (None) once the job ran
        self.thunk: Any = thunk  # a write job's thunk runs a whole group: thunk(list_of_jobs)
        self.write: Any = write
        self.durable = durable
        self.result: Any = None
        self.error: BaseException | None = None
        self.callbacks: list[Callable[[], object]] = []
        self.done = threading.Lock()
        self.done.acquire()


def _serve(jobs: queue.SimpleQueue) -> None:
    """The owner thread's loop. Holds no reference to the Database, so an unclosed one can be collected."""
    held: list = []  # a job taken while gathering a group, run next
    while True:
        job = held.pop() if held else jobs.get()
        if job is None:
            return
        group = [job]
        if job.write is not None:
            while len(group) < MAX_GROUP:
                try:
                    more = jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None or more.write is None:
                    held.append(more)
                    break
                group.append(more)
        try:
            if job.write is not None:
                job.thunk(group)
            else:
                job.result = job.thunk()
        except BaseException as e:  # noqa: BLE001 - handed to the callers, never lost
            for j in group:
                if j.error is None:
                    j.error, j.result, j.callbacks = e, None, []
        finally:
            for j in group:
                j.thunk = j.write = None  # they refer to the Database; keep nothing alive while idle
                j.done.release()
            del job, group


def _reraise(exc: BaseException, path: Path) -> NoReturn:
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
        self._conn: Any = None  # the owner thread's sqlcipher3 connection, once open
        self._schema_version = 0
        self._closed = False
        self._after_commit: list[Callable[[], object]] | None = None  # set while a write is open
        self._after_commit_keys: set = set()
        self._batches: dict[object, tuple[list, Callable[[list], object]]] | None = None  # set while a write is open
        self._rollbacks = 0
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

    def write(self, fn: Callable[..., T], *, durable: bool = True) -> T:
        """Run ``fn(conn)`` in one write transaction on the owner thread; its result is returned.

        Callbacks ``fn`` registered with :meth:`after_commit` then run on the calling thread.
        ``durable=False``: losing this write in a power cut is harmless (see "Durability").
        """
        if threading.get_ident() == self._thread.ident:
            return fn(self._conn)  # nested: join the transaction already open
        job = self._submit(_Job(self._run_group, fn, durable))
        if job.error is not None:
            _reraise(job.error, self._path)
        for callback in job.callbacks:
            try:
                callback()
            except Exception:
                log.exception("an after-commit callback failed")
        return job.result

    def after_commit(self, callback: Callable[[], object], *, key: object = None) -> None:
        """Inside a write: run ``callback`` once the transaction has committed (never if it rolls back).

        For telling others what happened (events to the GUI, the daemon): they must never see a
        state that a rollback or a crash before the commit would take back. With ``key``, a
        callback is registered once per transaction however often it is asked for (e.g. one
        wake-up for many messages written in one transaction).
        """
        if threading.get_ident() != self._thread.ident or self._after_commit is None:
            raise RuntimeError("after_commit() is only for use inside a write")
        if key is not None:
            if key in self._after_commit_keys:
                return
            self._after_commit_keys.add(key)
        self._after_commit.append(callback)

    def batch(self, key: object, flush: Callable[[list], object]) -> list:
        """Inside a write: a list that lives as long as the current write (the same list for the
        same ``key``). When the write's function has returned, ``flush(items)`` runs once on the
        owner thread, inside the transaction, if the list is not empty; an exception from it fails
        the write as one from the function would. A write that fails drops its lists unflushed.

        For work that is cheaper done at once (many rows in one statement) than item by item; the
        owner of a batch flushes it itself (and clears it) before reading what it would write."""
        if threading.get_ident() != self._thread.ident or self._batches is None:
            raise RuntimeError("batch() is only for use inside a write")
        entry = self._batches.get(key)
        if entry is None:
            entry = self._batches[key] = ([], flush)
        return entry[0]

    @contextmanager
    def savepoint(self):
        """Inside a write: a nested savepoint around the ``with`` block. If the block raises, what it
        did is undone (its changes to the store, the items it added to batches, and it counts as a
        rollback, see :attr:`rollbacks`) and the exception goes on; otherwise the write goes on."""
        if threading.get_ident() != self._thread.ident or self._batches is None:
            raise RuntimeError("savepoint() is only for use inside a write")
        conn, batches = self._conn, self._batches
        assert batches is not None
        marks = {key: len(items) for key, (items, _) in batches.items()}
        conn.execute(f"SAVEPOINT {_INNER_SAVEPOINT}")
        try:
            yield
        except BaseException:
            self._rollbacks += 1
            for key, (items, _) in batches.items():
                del items[marks.get(key, 0):]
            if conn.in_transaction:  # else the store ended the transaction: nothing of it stands anyway
                conn.execute(f"ROLLBACK TO {_INNER_SAVEPOINT}")
                conn.execute(f"RELEASE {_INNER_SAVEPOINT}")
            raise
        conn.execute(f"RELEASE {_INNER_SAVEPOINT}")

    def _flush_batches(self) -> None:
        batches = self._batches
        assert batches is not None, "only inside a write"
        while any(items for items, _ in batches.values()):  # a flush may add to another batch
            for items, flush in list(batches.values()):
                if items:
                    flush(items)
                    items.clear()

    @property
    def rollbacks(self) -> int:
        """How many writes were rolled back so far (owner thread, inside a write). What a cache
        learned inside writes stands while this is unchanged: a rollback may have taken it back."""
        if threading.get_ident() != self._thread.ident:
            raise RuntimeError("rollbacks is only for use inside a write")
        return self._rollbacks

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
        job = self._submit(_Job(thunk))
        if job.error is not None:
            _reraise(job.error, self._path)
        return job.result

    def _submit(self, job: _Job) -> _Job:
        with self._submit_lock:
            if self._closed:
                raise RuntimeError(f"{self!r} is closed")
            self._jobs.put(job)
        job.done.acquire()
        return job

    def _setup(self, create: bool, migrations: str) -> None:
        if not create and self._path.is_file() and self._path.stat().st_size == 0:
            raise StoreCorrupt(self._path, store_reason("empty_file"))
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

    def _run_group(self, group: list[_Job]) -> None:
        """Run queued writes in one transaction, a savepoint each (none for a lone write), one COMMIT.
        Sets each job's result or error; a job whose ``fn`` failed leaves no trace in the store."""
        if self._synchronous == "FULL" and not any(job.durable for job in group):
            self._conn.execute("PRAGMA synchronous = NORMAL")  # WAL: commit without an fsync
            try:
                self._run_transactions(group)
            finally:
                self._conn.execute("PRAGMA synchronous = FULL")
        else:
            self._run_transactions(group)

    def _run_transactions(self, group: list[_Job]) -> None:
        conn = self._conn
        todo = list(group)
        while todo:
            conn.execute("BEGIN IMMEDIATE")
            lone = len(todo) == 1
            ran: list[_Job] = []
            lost: BaseException | None = None
            try:
                while todo:
                    job = todo.pop(0)
                    ran.append(job)
                    self._after_commit, job.callbacks = [], []
                    self._after_commit_keys.clear()
                    self._batches = {}
                    if not lone:
                        conn.execute(f"SAVEPOINT {_SAVEPOINT}")
                    try:
                        job.result = job.write(conn)
                        if not conn.in_transaction:
                            raise RuntimeError(
                                "the write function ended the transaction itself (commit or executescript)")
                        self._flush_batches()
                        if not lone:
                            conn.execute(f"RELEASE {_SAVEPOINT}")
                        job.callbacks = self._after_commit
                    except BaseException as e:
                        job.error, job.result = e, None
                        if not conn.in_transaction:  # the store ended it (or fn did): nothing of it stands
                            lost = e
                            break
                        if lone:
                            raise
                        self._rollbacks += 1
                        conn.execute(f"ROLLBACK TO {_SAVEPOINT}")
                        conn.execute(f"RELEASE {_SAVEPOINT}")
                if lost is None:
                    conn.execute("COMMIT")
            except BaseException as e:  # noqa: BLE001 - rolled back, then raised again
                self._rollback()
                lost = e
            finally:
                self._after_commit = self._batches = None
                self._after_commit_keys.clear()
            if lost is not None:
                self._rollbacks += 1
                for job in ran:  # their work went with the transaction
                    if job.error is None:
                        job.error, job.result = lost, None
                    job.callbacks = []

    def _rollback(self) -> None:
        self._rollbacks += 1
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
                raise StoreError(LocalText("storage.reason.rekey_failed")) from None
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
