"""Store: the directory of a node — create, open, lock, subkeys, passphrase change, nothing at rest."""

from __future__ import annotations

import hashlib
import json
import stat
import threading
from pathlib import Path

import pytest

from appliance.errors import StoreBusy, StoreCorrupt, StoreExists, StoreFromFuture, StoreNotFound, WrongPassphrase
from appliance.storage import KdfParams, Store, read_header
from tests.storage_migrations_fixture import PACKAGE as FIXTURE

PASS = "correct horse 电池 staple".encode()
NEW_PASS = b"another passphrase"
SECRETS = ("敏感客户数据-XYZ-12345", "ACME-CONFIDENTIAL-4242-PAYLOAD")


def create(home: Path, passphrase: bytes = PASS) -> Store:
    return Store.create(home, passphrase, kdf=KdfParams.fast(), migrations=FIXTURE)


def open_store(home: Path, passphrase: bytes = PASS) -> Store:
    return Store.open(home, passphrase, migrations=FIXTURE)


def add_note(store: Store, key: str, text: str) -> None:
    store.db.write(lambda c: c.execute("INSERT INTO note (key, text) VALUES (?, ?)", (key, text)))


def notes(store: Store) -> dict[str, str]:
    return dict(store.db.read(lambda c: c.execute("SELECT key, text FROM note").fetchall()))


def digests(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_create_lays_out_a_private_store(tmp_path):
    home = tmp_path / "home"
    assert not Store.exists(home)
    with create(home) as store:
        assert store.dir == home
        assert store.db.schema_version == 2
        assert store.kdf == KdfParams.fast()
    assert Store.exists(home)
    assert sorted(p.name for p in home.iterdir()) == ["node.header", "node.lock", "node.sqlite", "vault"]
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "vault").stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "node.header").stat().st_mode) == 0o600
    assert list((home / "vault").iterdir()) == []
    assert read_header(home / "node.header").opslimit == 1


def _loose_files(home: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in home.rglob("*")
            if p.is_file() and stat.S_IMODE(p.stat().st_mode) & 0o077}


def test_every_file_of_a_store_is_owner_only_while_it_is_written_and_after(tmp_path):
    home = tmp_path / "home"
    with create(home) as store:
        add_note(store, "k", "v")
        assert {p.name for p in home.iterdir()} >= {"node.sqlite-wal", "node.sqlite-shm"}  # WAL files exist now
        assert _loose_files(home) == {}
    assert _loose_files(home) == {}


def test_a_store_made_with_readable_files_is_narrowed_when_opened(tmp_path):
    home = tmp_path / "home"
    create(home).close()
    (home / "node.sqlite").chmod(0o644)  # as stores made before the rule
    with open_store(home) as store:
        add_note(store, "k", "v")
        assert _loose_files(home) == {}


def test_data_survives_reopening(tmp_path):
    home = tmp_path / "home"
    with create(home) as store:
        add_note(store, "a", SECRETS[0])
    with open_store(home) as store:
        assert notes(store) == {"a": SECRETS[0]}


def test_create_refuses_an_existing_store(tmp_path):
    home = tmp_path / "home"
    create(home).close()
    before = digests(home)
    with pytest.raises(StoreExists):
        create(home)
    assert digests(home) == before


def test_create_in_an_existing_folder_keeps_other_files(tmp_path):
    (tmp_path / "settings.toml").write_text("x = 1\n")
    create(tmp_path).close()
    assert (tmp_path / "settings.toml").read_text() == "x = 1\n"


def test_create_sets_aside_a_database_left_without_its_header(tmp_path):
    home = tmp_path / "home"
    create(home).close()
    (home / "node.header").unlink()  # as if a crash hit create before the header was written
    assert not Store.exists(home)
    create(home).close()
    orphans = [p.name for p in home.iterdir() if ".orphan-" in p.name]
    assert len(orphans) == 1


def test_open_errors(tmp_path):
    with pytest.raises(StoreNotFound):
        open_store(tmp_path / "nowhere")
    with pytest.raises(StoreNotFound):
        open_store(tmp_path)
    home = tmp_path / "home"
    create(home).close()
    with pytest.raises(WrongPassphrase):
        open_store(home, b"wrong")
    (home / "node.header").write_text("{ not json")
    with pytest.raises(StoreCorrupt, match="not valid JSON"):
        open_store(home)
    (home / "node.header").unlink()
    with pytest.raises(StoreCorrupt, match="header node.header is missing"):
        open_store(home)


def test_wrong_passphrase_changes_nothing(tmp_path):
    home = tmp_path / "home"
    with create(home) as store:
        add_note(store, "a", "b")
    before = digests(home)
    with pytest.raises(WrongPassphrase):
        open_store(home, b"wrong")
    assert digests(home) == before
    assert not [t for t in threading.enumerate() if t.name.startswith("dsnode-db-")]


def test_a_newer_schema_is_refused(tmp_path):
    home = tmp_path / "home"
    create(home).close()
    with pytest.raises(StoreFromFuture):
        Store.open(home, PASS, migrations="tests.storage_migrations_fixture.only_one")


def test_one_process_at_a_time(tmp_path):
    home = tmp_path / "home"
    with create(home):
        with pytest.raises(StoreBusy):
            open_store(home)
    open_store(home).close()


def test_subkeys_are_per_purpose_and_survive_a_passphrase_change(tmp_path):
    home = tmp_path / "home"
    with create(home) as store:
        vault, backup = store.subkey("vault"), store.subkey("backup")
        assert len(vault) == 32 and vault != backup
        store.change_passphrase(NEW_PASS)
        assert store.subkey("vault") == vault
        with pytest.raises(ValueError):
            store.subkey("")
    with open_store(home, NEW_PASS) as store:
        assert store.subkey("vault") == vault
    with create(tmp_path / "other") as other:
        assert other.subkey("vault") != vault


def test_store_does_not_expose_its_key(tmp_path):
    with create(tmp_path / "home") as store:
        assert not hasattr(store, "key")
        assert "key" not in repr(store)


def test_change_passphrase(tmp_path):
    home = tmp_path / "home"
    with create(home) as store:
        add_note(store, "before", "1")
        header_before = (home / "node.header").read_bytes()
        store.change_passphrase(NEW_PASS)
        add_note(store, "after", "2")  # the open store keeps working
        assert notes(store) == {"before": "1", "after": "2"}
    before, after = json.loads(header_before), json.loads((home / "node.header").read_bytes())
    assert {k: v for k, v in after.items() if k != "keychecks"} == {k: v for k, v in before.items()
                                                                   if k != "keychecks"}  # same salt and costs
    assert after["keychecks"] != before["keychecks"] and len(after["keychecks"]) == 1  # the new key's check
    with pytest.raises(WrongPassphrase):
        open_store(home, PASS)
    with open_store(home, NEW_PASS) as store:
        assert notes(store) == {"before": "1", "after": "2"}
        store.change_passphrase(PASS)  # and back again
    open_store(home, PASS).close()


def test_empty_passphrase_is_a_bug(tmp_path):
    with pytest.raises(ValueError):
        create(tmp_path / "home", b"")
    with pytest.raises(TypeError):
        create(tmp_path / "home", "text")


def _assert_no_plaintext(directory: Path) -> list[str]:
    files = [p for p in directory.rglob("*") if p.is_file()]
    for path in files:
        data = path.read_bytes()
        for secret in SECRETS:
            for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
                assert secret.encode(encoding) not in data, f"{secret!r} ({encoding}) found in {path.name}"
    return sorted(p.name for p in files)


def test_nothing_readable_at_rest(tmp_path):
    home = tmp_path / "home"
    with create(home) as store:
        for i in range(300):  # enough to spill over several pages and stay in the WAL
            add_note(store, f"k{i}", f"{SECRETS[i % 2]} #{i}")
        # while open: database, WAL and shared-memory index are all on disk
        assert {"node.sqlite", "node.sqlite-wal", "node.sqlite-shm"} <= set(_assert_no_plaintext(home))
        info = store.backup(tmp_path / "backup.dsb")
    assert "node.sqlite" in _assert_no_plaintext(home)
    assert _assert_no_plaintext(tmp_path) and info.path.exists()
    header = json.loads((home / "node.header").read_text())
    assert set(header) == {"format", "version", "kdf", "opslimit", "memlimit", "salt", "keychecks"}
