"""Group commit: writes queued together share one transaction, yet each stays atomic on its own."""

from __future__ import annotations

import os
import threading

import pytest

from appliance.storage.database import Database


@pytest.fixture
def db(tmp_path):
    database = Database.open(tmp_path / "g.db", os.urandom(32), create=True)
    database.write(lambda c: c.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)"))
    yield database
    database.close()


def _queued_together(db: Database, fns: list) -> list:
    """Run ``fns`` as writes from as many threads while the owner thread is held busy, so they
    queue up and are taken as one group; returns each write's result or exception."""
    release, holding = threading.Event(), threading.Event()

    def hold(c):
        holding.set()
        release.wait(10)

    holder = threading.Thread(target=lambda: db.write(hold))
    holder.start()
    assert holding.wait(10)
    out: list = [None] * len(fns)

    def run(i):
        try:
            out[i] = db.write(fns[i])
        except Exception as e:  # noqa: BLE001 - the test looks at it
            out[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for _ in range(1000):
        if db._jobs.qsize() >= len(fns):  # noqa: SLF001 - every write is queued
            break
        threading.Event().wait(0.01)
    release.set()
    for t in [holder, *threads]:
        t.join(10)
    return out


def test_queued_writes_all_commit_and_a_failing_one_leaves_no_trace(db):
    def insert(k):
        return lambda c: c.execute("INSERT INTO t VALUES (?, 1)", (k,)).rowcount

    def half_then_fail(c):
        c.execute("INSERT INTO t VALUES ('bad', 1)")
        raise ValueError("refused")

    results = _queued_together(db, [insert("a"), half_then_fail, insert("b"), insert("a")])
    assert results[0] == 1 and results[2] == 1
    assert isinstance(results[1], ValueError)
    assert results[3].__class__.__name__.endswith("IntegrityError")  # a duplicate: only it fails
    assert db.read(lambda c: sorted(r[0] for r in c.execute("SELECT k FROM t"))) == ["a", "b"]


def test_after_commit_callbacks_run_for_the_writes_that_committed_only(db):
    seen: list[str] = []

    def ok(c):
        c.execute("INSERT INTO t VALUES ('x', 1)")
        db.after_commit(lambda: seen.append("x"))
        db.after_commit(lambda: seen.append("x-once"), key="k")
        db.after_commit(lambda: seen.append("x-twice"), key="k")

    def fails(c):
        db.after_commit(lambda: seen.append("never"))
        raise ValueError("no")

    _queued_together(db, [ok, fails])
    assert sorted(seen) == ["x", "x-once"]


def _insert_all(c, rows: list) -> None:
    c.executemany("INSERT INTO t VALUES (?, ?)", rows)


def _batched(db: Database, *rows, then=None):
    """A write that batches ``rows`` for table t (inserted when it returns), then runs ``then``."""

    def write(c):
        for row in rows:
            db.batch("t", lambda items: _insert_all(c, items)).append(row)
        if then is not None:
            then(c)
        return db.read(lambda c2: c2.execute("SELECT COUNT(*) FROM t").fetchone()[0])  # before the flush

    return write


def _keys(db: Database) -> list:
    return db.read(lambda c: [r[0] for r in c.execute("SELECT k FROM t ORDER BY v, k")])


def test_a_batch_is_written_once_when_its_write_returns_and_dropped_when_the_write_fails(db):
    assert db.write(_batched(db, ("a", 1), ("b", 2))) == 0  # nothing inserted while the write ran
    assert _keys(db) == ["a", "b"]

    def fail(c):
        raise ValueError("refused")

    results = _queued_together(db, [_batched(db, ("c", 3)), _batched(db, ("d", 4), then=fail),
                                    _batched(db, ("e", 5), ("f", 6))])
    assert isinstance(results[1], ValueError)
    assert _keys(db) == ["a", "b", "c", "e", "f"]  # each write's own batch; the failed one's never written
    with pytest.raises(RuntimeError):
        db.batch("t", lambda items: None)  # outside a write: a bug


def test_a_batch_that_cannot_be_written_fails_its_write_and_leaves_no_trace(db):
    def mark_then_batch_a_duplicate(c):
        c.execute("INSERT INTO t VALUES ('mark', 0)")
        db.batch("t", lambda items: _insert_all(c, items)).extend([("g", 7), ("a-dup", 8), ("a-dup", 9)])

    with pytest.raises(Exception) as err:
        db.write(mark_then_batch_a_duplicate)
    assert err.type.__name__.endswith("IntegrityError")
    assert _keys(db) == []  # the write's own row went with it


def test_a_savepoint_that_fails_takes_back_its_rows_its_batch_items_and_what_caches_learned(db):
    def write(c):
        batch = db.batch("t", lambda items: _insert_all(c, items))
        batch.append(("kept", 1))
        before = db.rollbacks
        with pytest.raises(ValueError), db.savepoint():
            c.execute("INSERT INTO t VALUES ('undone', 2)")
            batch.append(("undone-batched", 3))
            raise ValueError("this part fails")
        assert db.rollbacks == before + 1  # caches filled inside it are no longer trusted
        with db.savepoint():
            batch.append(("kept-too", 4))

    db.write(write)
    assert _keys(db) == ["kept", "kept-too"]
