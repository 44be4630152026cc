"""A store file with damaged bytes is told apart from tampering and from a wrong passphrase, is
found before anyone relies on it (status, a running node's check), and is never backed up."""

from __future__ import annotations

import json
import os
import threading

import pytest

from appliance.errors import StoreCorrupt, WrongPassphrase
from appliance.node import Node
from appliance.services.store_health import StoreDamaged, StoreHealth
from appliance.storage import KdfParams, Store
from appliance.storage.kdf import keycheck, read_header, write_header
from tests.integration.conftest import PASSPHRASE

PAGE = 4096


def _made(tmp_path, name="node") -> Node:
    node = Node.init(tmp_path / name, PASSPHRASE, name="车间一号", org="示例制造", kdf=KdfParams.fast())
    for i in range(200):  # some pages of data beyond the first
        node.evidence.record("test.step", f"urn:x:{i}", {"i": i, "text": "数据" * 20})
    node.close()
    return node


def _damage(path, page: int, where: int = 1000) -> None:
    with open(path, "r+b") as f:
        f.seek(page * PAGE + where)
        f.write(os.urandom(64))


def test_damage_in_the_middle_is_reported_by_status_evidence_and_backup_and_no_backup_is_written(tmp_path):
    home = _made(tmp_path).home
    pages = (home / "node.sqlite").stat().st_size // PAGE
    _damage(home / "node.sqlite", pages // 2)
    node = Node.open(home, PASSPHRASE)
    try:
        assert node.status(check_store=True).store_damage  # a plain read of a few tables would not have noticed
        with pytest.raises(StoreCorrupt, match="restore"):
            node.verify_evidence()  # damage, not "changed after it was written"
        with pytest.raises(StoreCorrupt, match="no backup was written"):
            node.backup(tmp_path / "backup.dsb")
        assert not (tmp_path / "backup.dsb").exists()
        assert not list(tmp_path.glob("backup.dsb*"))
    finally:
        node.close()


def test_a_sound_store_says_so_and_backs_up(tmp_path):
    node = Node.open(_made(tmp_path).home, PASSPHRASE)
    try:
        assert node.status(check_store=True).store_damage == ()
        assert node.verify_evidence().ok
        node.backup(tmp_path / "backup.dsb")
    finally:
        node.close()
    assert (tmp_path / "backup.dsb").stat().st_size > 0


def test_a_damaged_first_page_is_damage_and_a_wrong_passphrase_is_still_one(tmp_path):
    home = _made(tmp_path).home
    _damage(home / "node.sqlite", 0, where=100)
    with pytest.raises(StoreCorrupt, match="first page"):
        Node.open(home, PASSPHRASE)
    with pytest.raises(WrongPassphrase):
        Node.open(home, b"not the passphrase")


def test_a_store_made_before_the_key_check_gets_one_when_opened(tmp_path):
    home = _made(tmp_path).home
    header = json.loads((home / "node.header").read_text())
    del header["keychecks"]
    (home / "node.header").write_text(json.dumps(header))
    Node.open(home, PASSPHRASE).close()
    assert read_header(home / "node.header").keychecks != ()
    with pytest.raises(WrongPassphrase):
        Node.open(home, b"not the passphrase")


def test_a_passphrase_change_cut_short_leaves_each_passphrase_told_right(tmp_path):
    home = _made(tmp_path).home
    store = Store.open(home, PASSPHRASE)
    old_key = store._key
    new = b"a new passphrase 2026"
    store.change_passphrase(new)
    new_key = store._key
    store.close()
    assert read_header(home / "node.header").keychecks == (keycheck(new_key),)
    # as a crash after the rekey and before the header's last write would leave it
    header = read_header(home / "node.header")
    write_header(home / "node.header", type(header)(header.opslimit, header.memlimit, header.salt,
                                                    keychecks=(keycheck(old_key), keycheck(new_key))))
    with pytest.raises(WrongPassphrase):  # the old one: wrong now, not "damaged"
        Store.open(home, PASSPHRASE)
    Store.open(home, new).close()
    assert read_header(home / "node.header").keychecks == (keycheck(new_key),)


def test_a_running_node_checks_its_store_and_says_when_it_is_damaged(tmp_path, observed_errors):
    home = _made(tmp_path).home
    pages = (home / "node.sqlite").stat().st_size // PAGE
    _damage(home / "node.sqlite", pages // 2)
    node = Node.open(home, PASSPHRASE)
    try:
        seen = threading.Event()
        got: list[StoreDamaged] = []
        node.bus.subscribe(lambda e: (got.append(e), seen.set()), StoreDamaged)
        health = StoreHealth(node.store.db, node.bus, first=0.0)
        health.start()
        assert seen.wait(10)
        health.stop()
        assert got[0].problems and health.last_problems == got[0].problems
        assert any("damaged" in r.getMessage() for r in observed_errors)  # the daemon's log says it too
    finally:
        node.close()
