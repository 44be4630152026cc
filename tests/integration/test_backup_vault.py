"""Backups that carry the vault (format 2): hosted resources survive a move to another machine.

Real nodes, real SQLCipher stores and vault files in ``tmp_path``; each damaged backup is refused
with BackupInvalid while the target folder stays byte-identical.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.errors import BackupInvalid, VaultError, WrongPassphrase
from appliance.node import Node
from appliance.storage import read_header
from appliance.storage.backup import (
    ABYTES,
    CHUNK_SIZE,
    check_key,
    decrypt_stream,
    encrypt_chunks,
    encrypt_stream,
    preamble,
    read_preamble,
)
from tests.integration.conftest import PASSPHRASE

REPO = Path(__file__).resolve().parents[2]
SECRET = "ZQX7731KESTREL"
CSV = f"客户,金额,备注\n张三,1200.50,{SECRET}\n李四,88.00,加急\n"
BLOB = random.Random(11).randbytes(3 * CHUNK_SIZE + 123)  # spans several backup chunks


def digests(directory: Path) -> dict[str, str]:
    if not directory.exists():
        return {}
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def host_resources(node: Node, data: Path) -> dict[str, str]:
    """A hosted table, a hosted binary file and a hosted folder; returns their ids by name."""
    data.mkdir()
    (data / "orders.csv").write_text(CSV, encoding="utf-8")
    (data / "scan.bin").write_bytes(BLOB)
    (data / "docs").mkdir()
    (data / "docs" / "readme.txt").write_text(f"说明 {SECRET}", encoding="utf-8")
    (data / "docs" / "notes.txt").write_text("notes", encoding="utf-8")
    node.resources.allowed_roots = [data]
    return {name: node.resources.register(data / name, mode="hosted").resource.id
            for name in ("orders.csv", "scan.bin", "docs")}


def read_back(node: Node, ids: dict[str, str]) -> tuple:
    with node.resources.open_rows(ids["orders.csv"]) as rows:
        table = [list(r) for r in rows]
    with node.resources.open_bytes(ids["scan.bin"]) as f:
        blob = f.read()
    with node.resources.open_bytes(ids["docs"], file="readme.txt") as f:
        readme = f.read().decode("utf-8")
    return table, blob, readme


EXPECTED = ([["张三", "1200.50", SECRET], ["李四", "88.00", "加急"]], BLOB, f"说明 {SECRET}")


@dataclass
class Made:
    home: Path
    backup: Path
    ids: dict[str, str]
    objects: int


@pytest.fixture
def made(tmp_path, node) -> Made:
    """A closed node with hosted resources, and a backup of it."""
    ids = host_resources(node, tmp_path / "data")
    objects = node.store.db.read(lambda c: c.execute("SELECT count(*) FROM vault_object").fetchone()[0])
    backup = tmp_path / "node.dsb"
    node.backup(backup)
    node.close()
    return Made(node.home, backup, ids, objects)


def plaintext(backup: Path) -> tuple[bytes, int]:
    """The decrypted stream of a backup, and where the stream starts in the file."""
    with open(backup, "rb") as f:
        pre = read_preamble(f, backup)
        key = pre.header.derive_key(PASSPHRASE)
        check_key(pre, key)
        out = io.BytesIO()
        decrypt_stream(f, out, pre, key, backup)
    return out.getvalue(), len(pre.raw)


def file_offset(stream_start: int, plain_offset: int) -> int:
    """Where plaintext byte ``plain_offset`` sits in the file (each chunk: tag byte, data, 16-byte MAC)."""
    chunk, within = divmod(plain_offset, CHUNK_SIZE)
    return stream_start + 24 + chunk * (CHUNK_SIZE + ABYTES) + 1 + within


def assert_refused(backup: Path, home: Path, error=BackupInvalid, match: str | None = None, **kw) -> None:
    before, existed = digests(home), home.exists()
    with pytest.raises(error, match=match):
        Node.restore(backup, home, kw.pop("passphrase", PASSPHRASE), **kw)
    assert digests(home) == before and home.exists() == existed
    assert not [t for t in threading.enumerate() if t.name.startswith("dsnode-db-")]


# --- the round trip -------------------------------------------------------------------------------


def test_hosted_resources_come_back_on_another_machine(tmp_path, node):
    ids = host_resources(node, tmp_path / "data")
    objects = node.store.db.read(lambda c: c.execute("SELECT count(*), sum(size) FROM vault_object").fetchone())
    info = node.backup(tmp_path / "node.dsb")
    assert (info.vault_objects, info.size) == (objects[0], (tmp_path / "node.dsb").stat().st_size)
    assert info.vault_objects == 4 and info.vault_bytes > len(BLOB)  # csv, bin, two files of the folder
    node.close()
    moved = tmp_path / "usb-stick" / "node.dsb"
    moved.parent.mkdir()
    shutil.move(tmp_path / "node.dsb", moved)
    shutil.rmtree(node.home)  # the old machine and the original files are gone
    shutil.rmtree(tmp_path / "data")

    with Node.restore(moved, tmp_path / "machine-b" / "dsnode", PASSPHRASE) as restored:
        assert read_back(restored, ids) == EXPECTED
        assert {r.id for r in restored.resources.list()} == set(ids.values())
        assert restored.verify_evidence().ok
    with Node.open(tmp_path / "machine-b" / "dsnode", PASSPHRASE) as again:  # and it stays that way
        assert read_back(again, ids) == EXPECTED


def test_nothing_in_the_backup_is_readable(made):
    blob = made.backup.read_bytes()
    for needle in (SECRET.encode(), "加急".encode(), BLOB[1000:1032], b"readme.txt", b"orders"):
        assert needle not in blob
    meta = json.loads(blob.split(b"\n", 1)[0])
    assert meta["version"] == 2


def test_restore_over_a_store_with_other_hosted_files_keeps_exactly_the_backup(made, tmp_path):
    with Node.open(made.home, PASSPHRASE) as node:
        (tmp_path / "data" / "later.txt").write_text("added after the backup")
        node.resources.allowed_roots = [tmp_path / "data"]
        later = node.resources.register(tmp_path / "data" / "later.txt", mode="hosted").resource.id
    with Node.restore(made.backup, made.home, PASSPHRASE, replace=True) as node:
        assert read_back(node, made.ids) == EXPECTED
        assert later not in {r.id for r in node.resources.list()}
        listed = node.store.db.read(lambda c: {r[0] for r in c.execute("SELECT id FROM vault_object")})
    assert {p.stem for p in (made.home / "vault").iterdir()} == listed  # the newer file went as an orphan


# --- damage: nothing changes and the error says so ------------------------------------------------


@pytest.fixture
def layout(made) -> dict[str, int]:
    """File offsets of interesting bytes: inside the database, a vault file, the manifest."""
    plain, start = plaintext(made.backup)
    first_vault = plain.index(b'{"kind":"vault"')
    vault_data = plain.index(b"\n", first_vault) + 1
    manifest = plain.rindex(b'{"entries":')
    return {"database": file_offset(start, 300), "vault file": file_offset(start, vault_data + 20),
            "manifest": file_offset(start, manifest + 40), "last byte": made.backup.stat().st_size - 1,
            "stream start": start}


@pytest.mark.parametrize("where", ["database", "vault file", "manifest", "last byte"])
def test_a_flipped_byte_is_refused_and_nothing_changes(made, layout, tmp_path, where):
    data = bytearray(made.backup.read_bytes())
    data[layout[where]] ^= 0x20
    damaged = tmp_path / "damaged.dsb"
    damaged.write_bytes(bytes(data))
    assert_refused(damaged, made.home, match="authentication failed", replace=True)
    assert_refused(damaged, tmp_path / "fresh", match="authentication failed")


@pytest.mark.parametrize("keep", ["none", "10", "preamble", "stream header", "database", "vault file", "manifest",
                                  "chunk boundary", "all but one"])
def test_a_truncated_backup_is_refused_and_nothing_changes(made, layout, tmp_path, keep):
    size = made.backup.stat().st_size
    whole_chunks = (size - layout["stream start"] - 24) // (CHUNK_SIZE + ABYTES)
    cut = {"none": 0, "10": 10, "preamble": layout["stream start"], "stream header": layout["stream start"] + 24,
           "database": layout["database"], "vault file": layout["vault file"], "manifest": layout["manifest"],
           "chunk boundary": layout["stream start"] + 24 + whole_chunks * (CHUNK_SIZE + ABYTES),
           "all but one": size - 1}[keep]
    truncated = tmp_path / "cut.dsb"
    truncated.write_bytes(made.backup.read_bytes()[:cut])
    assert_refused(truncated, made.home, replace=True)
    assert_refused(truncated, tmp_path / "fresh")


@pytest.mark.parametrize("replace", [False, True])
def test_wrong_passphrase_changes_nothing(made, tmp_path, replace):
    target = made.home if replace else tmp_path / "fresh"
    assert_refused(made.backup, target, WrongPassphrase, passphrase=b"not the passphrase", replace=replace)


def _reencrypt(made: Made, tmp_path: Path, plain: bytes) -> Path:
    """A backup whose stream is ``plain``, made with the right key (a writer bug, or someone with the key)."""
    header = read_header(made.home / "node.header")
    key = header.derive_key(PASSPHRASE)
    meta = json.loads(made.backup.read_bytes().split(b"\n", 1)[0])
    forged = tmp_path / "forged.dsb"
    with open(forged, "wb") as f:
        ad = preamble(header, key, created=meta["created"], schema_version=meta["schema_version"])
        encrypt_chunks([plain], f, key, ad)
    return forged


def test_a_vault_file_that_does_not_match_the_manifest_is_refused(made, tmp_path):
    plain = bytearray(plaintext(made.backup)[0])
    first_vault = plain.index(b'{"kind":"vault"')
    plain[plain.index(b"\n", first_vault) + 30] ^= 0x01
    forged = _reencrypt(made, tmp_path, bytes(plain))
    assert_refused(forged, tmp_path / "fresh", match="does not match the manifest")


def test_a_backup_without_a_vault_file_its_database_lists_is_refused(made, tmp_path):
    plain = plaintext(made.backup)[0]
    start = plain.index(b'{"kind":"vault"')
    section = json.loads(plain[start:plain.index(b"\n", start)])
    end = plain.index(b"\n", start) + 1 + section["size"]
    manifest = json.loads(plain[plain.rindex(b'{"entries":'):])
    manifest["entries"] = [e for e in manifest["entries"] if e["name"] != section["name"]]
    body = plain[:start] + plain[end:plain.rindex(b'{"entries":')]
    forged = _reencrypt(made, tmp_path, body + json.dumps(manifest).encode() + b"\n")
    assert_refused(forged, tmp_path / "fresh", match=f"lacks the vault file of hosted object {section['name']}")


# --- format 1 backups still restore --------------------------------------------------------------


def _v1_backup(made: Made, tmp_path: Path) -> Path:
    """What dsnode wrote before format 2: the database snapshot alone (the store is closed)."""
    assert not (made.home / "node.sqlite-wal").exists()
    header = read_header(made.home / "node.header")
    key = header.derive_key(PASSPHRASE)
    v1 = tmp_path / "old.dsb"
    with open(made.home / "node.sqlite", "rb") as src, open(v1, "wb") as out:
        ad = preamble(header, key, created="2026-01-01T00:00:00.000Z", schema_version=_schema(made.home, key),
                      version=1)
        encrypt_stream(src, out, key, ad)
    return v1


def _schema(home: Path, key: bytes) -> int:
    from appliance.storage.connection import connect

    conn = connect(home / "node.sqlite", key)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def test_a_format_1_backup_restores_in_place_with_its_hosted_files(made, tmp_path):
    v1 = _v1_backup(made, tmp_path)
    with Node.restore(v1, made.home, PASSPHRASE, replace=True) as node:
        assert read_back(node, made.ids) == EXPECTED  # the vault files were still there


def test_a_format_1_backup_restores_elsewhere_without_the_hosted_content(made, tmp_path):
    v1 = _v1_backup(made, tmp_path)
    with Node.restore(v1, tmp_path / "elsewhere", PASSPHRASE) as node:
        assert {r.id for r in node.resources.list()} == set(made.ids.values())
        with pytest.raises(VaultError):
            read_back(node, made.ids)


# --- a backup killed halfway leaves no backup file ------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import appliance.storage.backup as backup
    from appliance.node import Node

    home, dest, pause_after = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    original = backup.sections

    def paused(*args):
        for n, piece in enumerate(original(*args), 1):
            yield piece
            if n == pause_after:
                break
        print("paused", flush=True)
        time.sleep(60)

    backup.sections = paused
    with Node.open(home, sys.argv[4].encode()) as node:
        node.backup(dest)
    """
)


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
@pytest.mark.parametrize("pause_after", [1, 3, 6, 10_000])  # database line, its data, a vault file, the end
def test_a_killed_backup_leaves_no_backup_file(made, tmp_path, pause_after):
    dest = tmp_path / "out" / "killed.dsb"
    dest.parent.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(made.home), str(dest), str(pause_after),
                             PASSPHRASE.decode()], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout.readline().strip() == b"paused", proc.stderr.read().decode()
        leftovers = list(dest.parent.iterdir())
        assert [p.name.startswith(".killed.dsb.tmp-") for p in leftovers] == [True]  # written so far
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert not dest.exists()
    assert_refused(leftovers[0], tmp_path / "fresh")  # the partial file is not a usable backup
    with Node.open(made.home, PASSPHRASE) as node:  # the store is fine and backs up again
        node.backup(dest)
    with Node.restore(dest, tmp_path / "restored", PASSPHRASE) as node:
        assert read_back(node, made.ids) == EXPECTED
