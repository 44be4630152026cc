"""Crash safety: SIGKILL a child process at many points while it writes, or while it rekeys.

After every kill the parent opens the store and checks what a user would notice: it opens (with
the old or the new passphrase), SQLite's and SQLCipher's integrity checks pass, the invariant
"counter = number of items" holds, and every transaction the child reported as committed is there.
"""

from __future__ import annotations

import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from appliance.errors import WrongPassphrase
from appliance.storage import KdfParams, Store
from tests.storage_migrations_fixture import PACKAGE as FIXTURE

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL")

REPO = Path(__file__).resolve().parents[2]
OLD, NEW = b"old passphrase", b"new passphrase"

CHILD = textwrap.dedent(
    """
    import os, random, sys, time
    from pathlib import Path
    from appliance.storage import Store

    mode, home, fixture = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    store = Store.open(home, b"old passphrase", migrations=fixture)
    print("ready", flush=True)
    if mode == "rekey":
        start = time.perf_counter()
        store.change_passphrase(b"new passphrase")
        print(f"changed {time.perf_counter() - start:.6f}", flush=True)
        time.sleep(60)
    rng = random.Random(os.getpid())
    seq = store.db.read(lambda c: c.execute("SELECT n FROM counter").fetchone()[0])
    while True:
        body = os.urandom(rng.choice((10, 500, 3000, 20000))).hex()  # 1 to ~10 pages per commit
        def tx(conn, seq=seq, body=body):
            conn.execute("INSERT INTO item (seq, body) VALUES (?, ?)", (seq, body))
            conn.execute("UPDATE counter SET n = n + 1")
        store.db.write(tx)
        print(f"committed {seq}", flush=True)
        seq += 1
    """
)


class Child:
    """The child process and a thread that collects its stdout lines."""

    def __init__(self, mode: str, home: Path) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, mode, str(home), FIXTURE], cwd=REPO, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        self.reader = threading.Thread(target=self._read, name="crash-test-reader")
        self.reader.start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            self.lines.put(raw.decode().strip())
        self.lines.put(None)

    def wait_for(self, prefix: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"child ended early: {self.proc.stderr.read().decode()}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.returncode is None:  # a failed assertion must not leave the child running
            self.proc.kill()
            self.proc.wait(timeout=30)
            self.reader.join(timeout=30)
            self.proc.stdout.close()
            self.proc.stderr.close()

    def kill(self) -> list[str]:
        """SIGKILL, then everything the child printed."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.reader.join(timeout=30)
        while (line := self.lines.get()) is not None:
            self.seen.append(line)
        self.proc.stdout.close()
        self.proc.stderr.close()
        assert self.proc.returncode == -signal.SIGKILL, "the child died by itself"
        return self.seen


def check_store(home: Path, passphrase: bytes) -> tuple[int, set[int]]:
    """Open and verify; returns (counter, set of item seqs)."""
    with Store.open(home, passphrase, migrations=FIXTURE) as store:
        # cipher_integrity_check reads the database file only, not the WAL: a kill after the rekey
        # committed but before its checkpoint leaves new-key pages in the WAL and old-key pages in
        # the file, which is correct (the WAL wins) until the checkpoint copies them over.
        assert store.db.checkpoint()[0] == 0
        def inspect(conn):
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA cipher_integrity_check").fetchall() == []
            n = conn.execute("SELECT n FROM counter").fetchone()[0]
            seqs = {s for (s,) in conn.execute("SELECT seq FROM item")}
            return n, seqs

        return store.db.read(inspect)


@pytest.mark.slow
def test_kill_while_writing(tmp_path):
    home = tmp_path / "home"
    Store.create(home, OLD, kdf=KdfParams.fast(), migrations=FIXTURE).close()
    rng = random.Random(20261122)
    # (wait for "ready"?, delay): some kills land while the child starts and opens the store
    points = [(False, d) for d in (0.0, 0.02, 0.05, 0.1, 0.2, 0.3)]
    points += [(True, rng.uniform(0.0, 0.25)) for _ in range(30)]
    committed: set[int] = set()
    for after_ready, delay in points:
        with Child("write", home) as child:
            if after_ready:
                child.wait_for("ready")
            time.sleep(delay)
            lines = child.kill()
        committed |= {int(line.split()[1]) for line in lines if line.startswith("committed")}
        n, seqs = check_store(home, OLD)
        assert n == len(seqs), f"counter {n} but {len(seqs)} items (kill after {delay:.3f}s)"
        assert committed <= seqs, f"lost committed transactions {sorted(committed - seqs)[:5]}"
        assert seqs == set(range(n))
    assert len(committed) > 100  # the kills really landed among commits


@pytest.mark.slow
def test_kill_while_changing_the_passphrase(tmp_path):
    base = tmp_path / "base"
    with Store.create(base, OLD, kdf=KdfParams.fast(), migrations=FIXTURE) as store:
        def fill(conn):
            for seq in range(1500):  # ~6 MB: the rekey rewrites every page, so it takes a while
                conn.execute("INSERT INTO item (seq, body) VALUES (?, ?)", (seq, os.urandom(2000).hex()))
            conn.execute("UPDATE counter SET n = 1500")
        store.db.write(fill)
    expected = check_store(base, OLD)

    duration = float(_run_rekey(tmp_path / "calibrate", base, None)[-1].split()[1])
    rng = random.Random(7)
    delays = [0.0] + [duration * 1.3 * i / 29 for i in range(1, 30)] + [rng.uniform(0, duration) for _ in range(5)]
    outcomes = {"old": 0, "new": 0}
    for k, delay in enumerate(delays):
        home = tmp_path / f"run{k}"
        lines = _run_rekey(home, base, delay)
        changed = any(line.startswith("changed") for line in lines)
        try:
            found, which = check_store(home, NEW), "new"
        except WrongPassphrase:
            assert not changed, "the child reported the change but the new passphrase does not open the store"
            found, which = check_store(home, OLD), "old"
        assert found == expected, f"data differs after a kill {delay:.3f}s into the rekey ({which} passphrase)"
        outcomes[which] += 1
        shutil.rmtree(home)
    print(f"rekey takes {duration * 1000:.0f} ms; after {len(delays)} kills the store opened with {outcomes}")
    assert outcomes["old"] and outcomes["new"]


def _run_rekey(home: Path, base: Path, delay: float | None) -> list[str]:
    shutil.copytree(base, home)
    with Child("rekey", home) as child:
        child.wait_for("ready")
        if delay is None:
            child.wait_for("changed")
        else:
            time.sleep(delay)
        return child.kill()
