"""Backup and restore with real stores: round trip, damage of every kind, atomic replacement."""

from __future__ import annotations

import hashlib
import io
import json
import random
import stat
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from appliance.clock import FixedClock
from appliance.errors import BackupInvalid, StoreBusy, StoreExists, StoreFromFuture, WrongPassphrase
from appliance.storage import KdfParams, Store, read_header
from appliance.storage.backup import encrypt_chunks, encrypt_stream, preamble, sections
from appliance.storage.layout import StoreLayout
from tests.storage_migrations_fixture import PACKAGE as FIXTURE

PASS = b"backup passphrase"


def create(home: Path, passphrase: bytes = PASS) -> Store:
    return Store.create(home, passphrase, kdf=KdfParams.fast(), migrations=FIXTURE)


def restore(backup: Path, home: Path, passphrase: bytes = PASS, **kw) -> Store:
    return Store.restore(backup, home, passphrase, migrations=FIXTURE, **kw)


def add_notes(store: Store, prefix: str, n: int) -> None:
    def work(conn):
        for i in range(n):
            conn.execute("INSERT INTO note (key, text) VALUES (?, ?)", (f"{prefix}{i}", f"text {prefix} {i}" * 5))
    store.db.write(work)


def note_keys(store: Store) -> set[str]:
    return {k for (k,) in store.db.read(lambda c: c.execute("SELECT key FROM note").fetchall())}


def digests(directory: Path) -> dict[str, str]:
    if not directory.exists():
        return {}
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def made(tmp_path) -> tuple[Path, Path]:
    """A closed store with 500 notes (several chunks of backup), and a backup of it."""
    home, backup = tmp_path / "home", tmp_path / "node.dsb"
    with create(home) as store:
        add_notes(store, "n", 500)
        store.backup(backup)
    return home, backup


def test_round_trip(tmp_path, made):
    home, backup = made
    with restore(backup, tmp_path / "restored") as store:
        assert len(note_keys(store)) == 500
        assert store.db.schema_version == 2
    assert sorted(p.name for p in (tmp_path / "restored").iterdir()) == [
        "node.header", "node.lock", "node.sqlite", "vault"]
    assert stat.S_IMODE((tmp_path / "restored").stat().st_mode) == 0o700


def test_backup_info_and_file(tmp_path):
    with create(tmp_path / "home") as store:
        clock = FixedClock(datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc))
        info = store.backup(tmp_path / "b.dsb", clock=clock)
    assert info.path == tmp_path / "b.dsb"
    assert info.created == "2026-03-01T08:00:00.000Z"
    assert info.schema_version == 2
    assert info.size == (tmp_path / "b.dsb").stat().st_size
    assert stat.S_IMODE(info.path.stat().st_mode) == 0o600
    meta = json.loads(info.path.read_bytes().split(b"\n", 1)[0])
    assert meta["format"] == "dsnode-backup" and meta["created"] == info.created
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.dsb", "home"]  # no temp files left
    assert not [p for p in (tmp_path / "home").iterdir() if p.name.startswith(".")]


def test_backup_is_a_consistent_snapshot_while_writes_go_on(tmp_path):
    home = tmp_path / "home"
    stop = threading.Event()
    with create(home) as store:
        def writer():
            i = 0
            while not stop.is_set():
                store.db.write(lambda c, i=i: (c.execute("INSERT INTO item (seq, body) VALUES (?, 'x')", (i,)),
                                               c.execute("UPDATE counter SET n = n + 1")))
                i += 1

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            backups = [store.backup(tmp_path / f"b{k}.dsb").path for k in range(5)]
        finally:
            stop.set()
            thread.join()
    for k, backup in enumerate(backups):
        with restore(backup, tmp_path / f"r{k}") as copy:
            n, items = copy.db.read(lambda c: (c.execute("SELECT n FROM counter").fetchone()[0],
                                               c.execute("SELECT count(*) FROM item").fetchone()[0]))
            assert n == items


def test_restore_refuses_to_overwrite_without_replace(made):
    home, backup = made
    before = digests(home)
    with pytest.raises(StoreExists):
        restore(backup, home)
    assert digests(home) == before


def test_restore_with_replace_swaps_in_the_backup(made):
    home, backup = made
    with Store.open(home, PASS, migrations=FIXTURE) as store:
        add_notes(store, "later", 3)
        store.change_passphrase(b"changed since")
    with restore(backup, home, replace=True) as store:
        assert len(note_keys(store)) == 500  # the notes added after the backup are gone
    assert sorted(p.name for p in home.iterdir()) == ["node.header", "node.lock", "node.sqlite", "vault"]
    with pytest.raises(WrongPassphrase):
        Store.open(home, b"changed since", migrations=FIXTURE)


def test_restore_over_an_open_store_is_busy(made):
    home, backup = made
    with Store.open(home, PASS, migrations=FIXTURE):
        with pytest.raises(StoreBusy):
            restore(backup, home, replace=True)


def test_subkeys_come_back_with_a_restore(tmp_path):
    with create(tmp_path / "home") as store:
        vault = store.subkey("vault")
        store.backup(tmp_path / "b.dsb")
    with restore(tmp_path / "b.dsb", tmp_path / "restored") as store:
        assert store.subkey("vault") == vault


def test_backup_needs_the_passphrase_of_its_time(tmp_path):
    with create(tmp_path / "home") as store:
        store.backup(tmp_path / "old.dsb")
        store.change_passphrase(b"new one")
        store.backup(tmp_path / "new.dsb")
    with pytest.raises(WrongPassphrase):
        restore(tmp_path / "old.dsb", tmp_path / "a", b"new one")
    restore(tmp_path / "old.dsb", tmp_path / "a", PASS).close()
    restore(tmp_path / "new.dsb", tmp_path / "b", b"new one").close()


def _assert_restore_fails(backup: Path, home: Path, error, **kw) -> None:
    before = digests(home)
    existed = home.exists()
    with pytest.raises(error):
        restore(backup, home, **kw)
    assert digests(home) == before
    assert home.exists() == existed
    assert not [t for t in threading.enumerate() if t.name.startswith("dsnode-db-")]


@pytest.mark.parametrize("replace", [False, True])
def test_wrong_passphrase(made, tmp_path, replace):
    home, backup = made
    target = home if replace else tmp_path / "new"
    _assert_restore_fails(backup, target, WrongPassphrase, passphrase=b"wrong", replace=replace)


def test_flipped_bytes_anywhere_are_refused_and_nothing_changes(made, tmp_path):
    home, backup = made
    blob = backup.read_bytes()
    preamble_len = blob.index(b"\n", blob.index(b"\n") + 1) + 1
    rng = random.Random(7)
    positions = sorted({*rng.sample(range(preamble_len), 8), *range(preamble_len, preamble_len + 30, 7),
                        *rng.sample(range(len(blob)), 12), len(blob) - 1})
    damaged = tmp_path / "damaged.dsb"
    for pos in positions:
        data = bytearray(blob)
        data[pos] ^= 0x40
        damaged.write_bytes(bytes(data))
        _assert_restore_fails(damaged, home, BackupInvalid, replace=True)
        _assert_restore_fails(damaged, tmp_path / "fresh", BackupInvalid)


@pytest.mark.parametrize("keep", [0, 10, 300, 0.5, -17, -1])
def test_truncated_backup(made, tmp_path, keep):
    home, backup = made
    blob = backup.read_bytes()
    cut = tmp_path / "cut.dsb"
    cut.write_bytes(blob[: int(len(blob) * keep) if isinstance(keep, float) else keep])
    _assert_restore_fails(cut, home, BackupInvalid, replace=True)


@pytest.mark.parametrize("content", [b"", b"hello world\n", b"SQLite format 3\x00" + bytes(4080)])
def test_junk_file(made, tmp_path, content):
    home, _ = made
    junk = tmp_path / "junk.dsb"
    junk.write_bytes(content)
    _assert_restore_fails(junk, home, BackupInvalid, replace=True)
    _assert_restore_fails(tmp_path / "missing.dsb", home, BackupInvalid, replace=True)


def test_a_store_file_is_not_a_backup(made, tmp_path):
    home, _ = made
    _assert_restore_fails(home / "node.sqlite", tmp_path / "fresh", BackupInvalid)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize(("offset", "detail"), [(100, "does not open"), (2 * 4096 + 100, "fail their check")])
def test_a_damaged_database_inside_an_intact_backup_is_refused(made, tmp_path, offset, detail, version):
    """The second line of defence: SQLCipher's page MACs and SQLite's integrity check after decrypting."""
    home, _ = made
    header = read_header(home / "node.header")
    key = header.derive_key(PASS)
    database = bytearray((home / "node.sqlite").read_bytes())
    database[offset] ^= 0x01
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(bytes(database))
    forged = tmp_path / "forged.dsb"
    with open(forged, "wb") as f:
        ad = preamble(header, key, created="2026-01-01T00:00:00.000Z", schema_version=2, version=version)
        if version == 1:
            encrypt_stream(io.BytesIO(bytes(database)), f, key, ad)
        else:
            encrypt_chunks(sections(damaged, tmp_path / "no-vault", [], []), f, key, ad)
    with pytest.raises(BackupInvalid, match=detail):
        restore(forged, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


def test_backup_from_a_newer_schema_is_refused(made, tmp_path):
    _, backup = made
    before = digests(tmp_path / "fresh")
    with pytest.raises(StoreFromFuture):
        Store.restore(backup, tmp_path / "fresh", PASS, migrations="tests.storage_migrations_fixture.only_one")
    assert digests(tmp_path / "fresh") == before


def test_an_interrupted_swap_is_rolled_forward_on_open(made, tmp_path):
    """Simulate a crash right after the commit marker: the next open finishes the restore."""
    home, backup = made
    with restore(backup, tmp_path / "staged") as store:
        add_notes(store, "only-in-restored", 1)
    layout = StoreLayout(home)
    (tmp_path / "staged" / "node.sqlite").rename(layout.db_restoring)
    (tmp_path / "staged" / "node.header").rename(layout.header_restoring)
    (home / "node.sqlite-wal").write_bytes(b"stale WAL of the old database")
    layout.restore_marker.write_text("restore in progress\n")
    assert Store.exists(home)
    with Store.open(home, PASS, migrations=FIXTURE) as store:
        assert "only-in-restored0" in note_keys(store)
    assert not layout.restore_marker.exists() and not layout.db_restoring.exists()


def test_an_uncommitted_swap_is_dropped_on_open(made, tmp_path):
    """A crash before the commit marker: the old store stays, the staged files go."""
    home, _ = made
    layout = StoreLayout(home)
    layout.db_restoring.write_bytes(b"half-written")
    layout.header_restoring.write_bytes(b"{}")
    with Store.open(home, PASS, migrations=FIXTURE) as store:
        assert len(note_keys(store)) == 500
    assert not layout.db_restoring.exists() and not layout.header_restoring.exists()
