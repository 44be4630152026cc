"""Database: real SQLCipher files — keys, migrations, transactions, threads, errors."""

from __future__ import annotations

import gc
import hashlib
import importlib
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlcipher3.dbapi2 as sqlcipher

from appliance.errors import (
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreFromFuture,
    StoreIOError,
    StoreNotFound,
    WrongPassphrase,
)
from appliance.storage import Database, MigrationError, latest_version
from tests.storage_migrations_fixture import PACKAGE as FIXTURE

REPO = Path(__file__).resolve().parents[2]
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def open_db(path: Path, key: bytes | None = KEY, **kw) -> Database:
    kw.setdefault("migrations", FIXTURE)
    return Database.open(path, key, **kw)


@pytest.fixture
def db(tmp_path):
    with open_db(tmp_path / "node.sqlite", create=True) as db:
        yield db


def make_package(tmp_path: Path, monkeypatch, modules: dict[str, str]) -> str:
    """A migrations package written for one test; returns its import name."""
    name = f"mig_{uuid.uuid4().hex[:12]}"
    pkg = tmp_path / "pkgs" / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for module, body in modules.items():
        (pkg / f"{module}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    importlib.invalidate_caches()
    return name


def digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.is_file()}


def add_item(conn, seq: int, body: str = "body") -> None:
    conn.execute("INSERT INTO item (seq, body) VALUES (?, ?)", (seq, body))
    conn.execute("UPDATE counter SET n = n + 1")


def count(conn) -> int:
    return conn.execute("SELECT count(*) FROM item").fetchone()[0]


# --- opening ---------------------------------------------------------------------------------


def test_create_applies_all_migrations_and_reopen_applies_none(tmp_path, caplog):
    path = tmp_path / "node.sqlite"
    caplog.set_level(logging.INFO, logger="appliance.storage.migrate")
    with open_db(path, create=True) as db:
        assert db.schema_version == latest_version(FIXTURE) == 2
        assert db.path == path
    assert [r.getMessage() for r in caplog.records] == [
        "applied schema migration m0001_ledger", "applied schema migration m0002_notes"]
    caplog.clear()
    with open_db(path) as db:
        assert db.schema_version == 2
        assert db.read(lambda c: c.execute("SELECT n FROM counter").fetchone()[0]) == 0
    assert caplog.records == []


def test_missing_file_is_not_found_and_not_created(tmp_path):
    with pytest.raises(StoreNotFound):
        open_db(tmp_path / "node.sqlite")
    assert list(tmp_path.iterdir()) == []


def test_wrong_key_changes_nothing_on_disk(tmp_path):
    path = tmp_path / "node.sqlite"
    with open_db(path, create=True) as db:
        db.write(lambda c: add_item(c, 1))
    before = digests(tmp_path)
    with pytest.raises(WrongPassphrase):
        open_db(path, OTHER_KEY)
    assert digests(tmp_path) == before


def test_wrong_key_prints_nothing_on_stderr(tmp_path):
    path = tmp_path / "node.sqlite"
    open_db(path, create=True).close()
    script = f"""
        from pathlib import Path
        from appliance.errors import WrongPassphrase
        from appliance.storage import Database
        try:
            Database.open(Path({str(path)!r}), bytes(32), migrations={FIXTURE!r})
        except WrongPassphrase:
            print("wrong passphrase")
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=REPO, capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert proc.stdout == b"wrong passphrase\n"
    assert proc.stderr == b""


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"", "empty"),
        (b"just some text\n", "not a database"),
        (os.urandom(1000), "not a database"),
    ],
)
def test_non_database_files_are_corrupt(tmp_path, content, detail):
    path = tmp_path / "node.sqlite"
    path.write_bytes(content)
    with pytest.raises(StoreCorrupt, match=detail):
        open_db(path)
    assert path.read_bytes() == content


def test_unencrypted_sqlite_file_is_corrupt(tmp_path):
    path = tmp_path / "node.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreCorrupt, match="unencrypted") as err:
        open_db(path)
    zh = err.value.message("zh_CN")  # the whole message in the user's language, the reason included
    assert "已损坏" in zh and "未加密的 SQLite 数据库" in zh and "not a dsnode store" not in zh


def test_database_from_the_future_is_refused_untouched(tmp_path, monkeypatch):
    path = tmp_path / "node.sqlite"
    open_db(path, create=True).close()
    before = digests(tmp_path)
    only_one = make_package(tmp_path, monkeypatch, {"m0001_ledger": "def migrate(conn):\n    pass\n"})
    with pytest.raises(StoreFromFuture) as err:
        open_db(path, migrations=only_one)
    assert err.value.args == (2, 1)
    assert digests(tmp_path) == before


def test_open_with_the_raw_key_skips_pbkdf2(tmp_path):
    """Not a benchmark: just shows the raw key form avoids SQLCipher's 256k-iteration PBKDF2."""
    path = tmp_path / "node.sqlite"
    open_db(path, create=True).close()
    start = time.perf_counter()
    open_db(path).close()
    raw = time.perf_counter() - start
    start = time.perf_counter()
    conn = sqlcipher.connect(str(tmp_path / "pbkdf2.sqlite"))
    conn.execute("PRAGMA key = 'a passphrase'")
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    pbkdf2 = time.perf_counter() - start
    print(f"open with raw key {raw * 1000:.1f} ms; one PBKDF2-keyed connection {pbkdf2 * 1000:.1f} ms")
    assert raw < pbkdf2


# --- migrations ------------------------------------------------------------------------------


def test_migrations_run_in_order(tmp_path, monkeypatch):
    pkg = make_package(tmp_path, monkeypatch, {
        "m0002_add_column": "def migrate(conn):\n    conn.execute('ALTER TABLE t ADD COLUMN y')\n",
        "m0001_create": "def migrate(conn):\n    conn.execute('CREATE TABLE t (x)')\n",
        "m0003_use_both": "def migrate(conn):\n    conn.execute('INSERT INTO t (x, y) VALUES (1, 2)')\n",
        "helpers": "X = 1\n",
    })
    with open_db(tmp_path / "db.sqlite", create=True, migrations=pkg) as db:
        assert db.schema_version == 3
        assert db.read(lambda c: c.execute("SELECT x, y FROM t").fetchall()) == [(1, 2)]


def test_failing_migration_keeps_the_previous_version(tmp_path, monkeypatch):
    good = "def migrate(conn):\n    conn.execute('CREATE TABLE a (x)')\n"
    bad = "def migrate(conn):\n    conn.execute('CREATE TABLE b (x)')\n    raise ValueError('migration bug')\n"
    failing = make_package(tmp_path, monkeypatch, {"m0001_a": good, "m0002_b": bad})
    path = tmp_path / "db.sqlite"
    with pytest.raises(ValueError, match="migration bug"):
        open_db(path, create=True, migrations=failing)
    first_only = make_package(tmp_path, monkeypatch, {"m0001_a": good})
    with open_db(path, migrations=first_only) as db:
        assert db.schema_version == 1
        tables = db.read(lambda c: c.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall())
        assert tables == [("a",)]


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        ({"m0001_a": "def migrate(c): pass", "m0003_c": "def migrate(c): pass"}, "missing \\[2\\]"),
        ({"m0002_b": "def migrate(c): pass"}, "missing \\[1\\]"),
        ({"m0001_a": "def migrate(c): pass", "m0001_b": "def migrate(c): pass"}, "two migrations numbered 1"),
        ({"m01_short": "def migrate(c): pass"}, "named m<NNNN>_<what>"),
        ({"m0001_nofunc": "X = 1"}, "no migrate"),
    ],
)
def test_bad_numbering_is_a_bug_found_at_discovery(tmp_path, monkeypatch, modules, message):
    pkg = make_package(tmp_path, monkeypatch, modules)
    with pytest.raises(MigrationError, match=message):
        open_db(tmp_path / "db.sqlite", create=True, migrations=pkg)
    assert not (tmp_path / "db.sqlite").exists()


def test_migration_that_commits_is_caught(tmp_path, monkeypatch):
    pkg = make_package(tmp_path, monkeypatch, {
        "m0001_script": "def migrate(conn):\n    conn.executescript('CREATE TABLE a (x); CREATE TABLE b (y);')\n",
    })
    with pytest.raises(MigrationError, match="committed its transaction"):
        open_db(tmp_path / "db.sqlite", create=True, migrations=pkg)


def test_the_real_migrations_package_is_well_formed():
    assert latest_version() >= 1


# --- transactions ----------------------------------------------------------------------------


def test_write_returns_the_result_and_commits(db):
    assert db.write(lambda c: add_item(c, 1) or "done") == "done"
    assert db.read(count) == 1


def test_write_rolls_back_and_reraises_unchanged(db):
    class Boom(Exception):
        pass

    boom = Boom("domain failure")

    def fail(conn):
        add_item(conn, 1)
        raise boom

    with pytest.raises(Boom) as err:
        db.write(fail)
    assert err.value is boom
    assert db.read(count) == 0
    assert db.read(lambda c: c.execute("SELECT n FROM counter").fetchone()[0]) == 0


DURABILITY_CHILD = """
import sys, time
from pathlib import Path
from appliance.storage import Database
path, durable, fixture = Path(sys.argv[1]), sys.argv[2] == "durable", sys.argv[3]
db = Database.open(path, bytes(range(32)), create=True, migrations=fixture)
for seq in range(20):
    db.write(lambda c, seq=seq: c.execute("INSERT INTO item (seq, body) VALUES (?, 'x')", (seq,)), durable=durable)
print("written", db.write(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]), flush=True)
time.sleep(60)  # killed here: whatever close() would flush is not flushed
"""


def _write_then_die(tmp_path: Path, durable: str) -> int:
    """Run the child under strace until it has written, SIGKILL it; returns its disk flushes."""
    trace = tmp_path / f"{durable}.strace"
    proc = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", str(trace), sys.executable,
                             "-c", DURABILITY_CHILD, str(tmp_path / f"{durable}.sqlite"), durable, FIXTURE],
                            cwd=REPO, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout.readline().split() == [b"written", b"2"]  # FULL again after each write
    finally:
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
            child = [int(pid) for pid in f.read().split()]  # the python process strace runs
        for pid in child:
            os.kill(pid, signal.SIGKILL)  # the process the test is about dies, not strace
        try:
            proc.wait(10)  # strace ends when its child does
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return sum(1 for line in trace.read_text().splitlines() if "sync(" in line)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace counts the disk flushes (packaging/quickstart.sh)")
def test_a_write_marked_not_durable_skips_the_disk_flush_but_survives_a_killed_process(tmp_path):
    durable = _write_then_die(tmp_path, "durable")
    relaxed = _write_then_die(tmp_path, "relaxed")
    assert durable >= 20  # one flush per commit at least
    assert relaxed <= durable - 20  # the same writes, committed without waiting for the disk
    with open_db(tmp_path / "relaxed.sqlite") as db:  # a killed process loses nothing (only a power cut could)
        assert db.read(count) == 20


def test_constraint_violation_propagates_as_the_driver_error(db):
    db.write(lambda c: add_item(c, 1))
    with pytest.raises(sqlcipher.IntegrityError):
        db.write(lambda c: add_item(c, 1))
    assert db.read(count) == 1


def test_nested_write_joins_the_outer_transaction(db):
    def outer(conn):
        add_item(conn, 1)
        db.write(lambda c: add_item(c, 2))
        assert db.read(count) == 2  # a read on the owner thread sees the open transaction
        raise RuntimeError("undo both")

    with pytest.raises(RuntimeError):
        db.write(outer)
    assert db.read(count) == 0
    db.write(lambda c: (add_item(c, 1), db.write(lambda c2: add_item(c2, 2))))
    assert db.read(count) == 2


def test_write_runs_on_the_named_owner_thread(db):
    name = db.write(lambda c: threading.current_thread().name)
    assert name == "dsnode-db-node"
    assert db.read(lambda c: threading.current_thread().name) == threading.current_thread().name


def test_read_sees_committed_data_and_cannot_write(db):
    db.write(lambda c: add_item(c, 7, "seven"))
    assert db.read(lambda c: c.execute("SELECT body FROM item WHERE seq = 7").fetchone()) == ("seven",)
    with pytest.raises(sqlcipher.OperationalError, match="readonly"):
        db.read(lambda c: add_item(c, 8))


def test_read_is_one_snapshot(db):
    def look_twice(conn):
        first = count(conn)
        threading.Thread(target=db.write, args=(lambda c: add_item(c, 1),)).run()  # commits meanwhile
        return first, count(conn)

    assert db.read(look_twice) == (0, 0)
    assert db.read(count) == 1


def test_nested_read_on_a_reader_thread_reuses_its_snapshot(db):
    assert db.read(lambda c: db.read(lambda c2: c2 is c))


def test_concurrent_writers_and_readers(db):
    errors: list[BaseException] = []

    def worker(base: int) -> None:
        try:
            for i in range(50):
                db.write(lambda c, i=i: add_item(c, base + i))
                n, items = db.read(lambda c: (c.execute("SELECT n FROM counter").fetchone()[0], count(c)))
                assert n == items
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert db.read(count) == 200


# --- store conditions become store errors ------------------------------------------------------


def test_locked_database_is_store_busy(tmp_path):
    path = tmp_path / "node.sqlite"
    with open_db(path, create=True, busy_timeout=0.1) as db:
        other = sqlcipher.connect(str(path), isolation_level=None)
        other.execute(f"PRAGMA key = \"x'{KEY.hex()}'\"")
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreBusy):
                db.write(lambda c: add_item(c, 1))
        finally:
            other.execute("ROLLBACK")
            other.close()
        db.write(lambda c: add_item(c, 1))


def test_full_disk_is_a_store_io_error(db):
    def fill(conn):
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        conn.execute("INSERT INTO note (key, text) VALUES ('big', ?)", ("x" * 1_000_000,))

    with pytest.raises(StoreIOError, match="disk is full"):
        db.write(fill)


def test_store_errors_keep_the_driver_error_as_cause(db):
    def fill(conn):
        conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
        conn.execute("INSERT INTO note (key, text) VALUES ('big', ?)", ("x" * 1_000_000,))

    with pytest.raises(StoreError) as err:
        db.write(fill)
    assert isinstance(err.value.__cause__, sqlcipher.OperationalError)


# --- lifecycle -------------------------------------------------------------------------------


def test_close_is_idempotent_and_stops_the_thread(tmp_path):
    db = open_db(tmp_path / "node.sqlite", create=True)
    thread = next(t for t in threading.enumerate() if t.name == "dsnode-db-node")
    db.close()
    db.close()
    assert not thread.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        db.write(lambda c: None)
    with pytest.raises(RuntimeError, match="closed"):
        db.read(lambda c: None)
    assert not (tmp_path / "node.sqlite-wal").exists()


def test_close_inside_a_write_is_refused(db):
    with pytest.raises(RuntimeError, match="inside a write"):
        db.write(lambda c: db.close())


def test_an_unclosed_database_stops_its_thread_when_collected(tmp_path):
    db = open_db(tmp_path / "node.sqlite", create=True)
    thread = next(t for t in threading.enumerate() if t.name == "dsnode-db-node")
    assert thread.daemon  # cannot hang interpreter exit
    del db
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_an_unclosed_database_does_not_hang_interpreter_exit(tmp_path):
    script = f"""
        from pathlib import Path
        from appliance.storage import Database
        db = Database.open(Path({str(tmp_path / 'node.sqlite')!r}), bytes(32), create=True, migrations={FIXTURE!r})
        db.write(lambda c: c.execute("INSERT INTO item (seq, body) VALUES (1, 'x')"))
        print("exiting without close")
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=REPO, capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"exiting without close\n", b"")
    with open_db(tmp_path / "node.sqlite", bytes(32)) as db:
        assert db.read(count) == 1


def test_failed_open_leaves_no_thread(tmp_path):
    path = tmp_path / "node.sqlite"
    open_db(path, create=True).close()
    with pytest.raises(WrongPassphrase):
        open_db(path, OTHER_KEY)
    assert not [t for t in threading.enumerate() if t.name.startswith("dsnode-db-")]


def test_checkpoint_empties_the_wal(db):
    for i in range(20):
        db.write(lambda c, i=i: add_item(c, i))
    assert (db.path.parent / "node.sqlite-wal").stat().st_size > 0
    busy, _, _ = db.checkpoint()
    assert busy == 0
    assert (db.path.parent / "node.sqlite-wal").stat().st_size == 0


def test_rekey_switches_keys_for_every_connection(tmp_path):
    path = tmp_path / "node.sqlite"
    with open_db(path, create=True) as db:
        db.write(lambda c: add_item(c, 1))
        reader = threading.Thread(target=db.read, args=(count,))
        reader.start()
        reader.join()  # leaves an idle pooled connection holding the old key
        db.rekey(OTHER_KEY)
        assert db.read(count) == 1
        db.write(lambda c: add_item(c, 2))
    with pytest.raises(WrongPassphrase):
        open_db(path, KEY)
    with open_db(path, OTHER_KEY) as db:
        assert db.read(count) == 2


def test_rekey_while_a_reader_holds_an_old_snapshot(db):
    for i in range(200):
        db.write(lambda c, i=i: add_item(c, i, "x" * 500))
    inside, rekeyed = threading.Event(), threading.Event()
    results: list = []

    def long_read(conn):
        first = count(conn)
        inside.set()
        rekeyed.wait(10)
        return first, len(conn.execute("SELECT body FROM item").fetchall())

    reader = threading.Thread(target=lambda: results.append(db.read(long_read)))
    reader.start()
    inside.wait(10)
    db.rekey(OTHER_KEY)
    db.write(lambda c: add_item(c, 1000))
    rekeyed.set()
    reader.join()
    assert results == [(200, 200)]
    assert db.read(count) == 201


def test_rekey_and_checkpoint_inside_a_write_are_refused(db):
    with pytest.raises(RuntimeError, match="inside a write"):
        db.write(lambda c: db.rekey(OTHER_KEY))
    with pytest.raises(RuntimeError, match="inside a write"):
        db.write(lambda c: db.checkpoint())


def test_plain_database_for_benchmarks(tmp_path):
    path = tmp_path / "plain.sqlite"
    with open_db(path, None, create=True, plain=True, synchronous="NORMAL") as db:
        db.write(lambda c: add_item(c, 1))
        assert db.read(count) == 1
        assert db.plain
    assert db.closed
    assert path.read_bytes()[:16] == b"SQLite format 3\x00"
    with pytest.raises(ValueError):
        Database.open(path, KEY, plain=True)
    with pytest.raises(ValueError):
        Database.open(path, None)
    with pytest.raises(ValueError):
        Database.open(path, KEY, synchronous="OFF")


def test_repr_shows_no_key(db):
    assert KEY.hex() not in repr(db)
    assert "node.sqlite" in repr(db)


def test_after_commit_callbacks_run_only_once_the_transaction_committed(tmp_path):
    from appliance.storage import Database

    db = Database.open(tmp_path / "ac.sqlite", None, create=True, plain=True,
                       migrations=FIXTURE)
    seen = []
    try:
        def ok(conn):
            db.after_commit(lambda: seen.append(conn.in_transaction))
            return "done"

        assert db.write(ok) == "done"
        assert seen == [False], "the callback ran after COMMIT, outside the transaction"

        def fails(conn):
            db.after_commit(lambda: seen.append("rolled back"))
            raise ValueError("no")

        with pytest.raises(ValueError):
            db.write(fails)
        assert seen == [False], "a rolled-back write runs no callback"
        with pytest.raises(RuntimeError):
            db.after_commit(lambda: None)  # outside a write: a bug
    finally:
        db.close()
