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
