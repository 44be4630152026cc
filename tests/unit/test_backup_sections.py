"""Backup format 2 in memory: the sections (database, vault files, manifest) and what damage looks like."""

from __future__ import annotations

import hashlib
import io
import json
import random
from pathlib import Path

import pytest

from appliance.errors import BackupInvalid, StoreCorrupt
from appliance.storage.backup import (
    CHUNK_SIZE,
    SectionReader,
    check_key,
    decrypt_stream,
    encrypt_chunks,
    preamble,
    read_preamble,
    sections,
)
from appliance.storage.kdf import StoreHeader

PATH = Path("backup.dsb")
HEADER = StoreHeader(opslimit=1, memlimit=8192, salt=bytes(range(16)))
KEY = bytes(range(32))
IDS = ["a" * 32, "0123456789abcdef" * 2, "f" * 32]


class Sink:
    """Where a SectionReader puts each section, in memory."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], io.BytesIO] = {}

    def open(self, kind: str, name: str) -> io.BytesIO:
        f = io.BytesIO()
        f.close = lambda: None  # keep the content readable after the section ends
        self.files[kind, name] = f
        return f

    def content(self) -> dict[tuple[str, str], bytes]:
        return {k: f.getvalue() for k, f in self.files.items()}


@pytest.fixture
def store_files(tmp_path) -> tuple[Path, Path, dict[tuple[str, str], bytes]]:
    rng = random.Random(5)
    db = tmp_path / "snapshot"
    db.write_bytes(rng.randbytes(3 * 4096))
    vault = tmp_path / "vault"
    vault.mkdir()
    expected = {("database", "node.sqlite"): db.read_bytes()}
    for object_id, size in zip(IDS, [0, 1, 2 * CHUNK_SIZE + 5], strict=True):
        data = rng.randbytes(size)
        (vault / f"{object_id}.obj").write_bytes(data)
        expected["vault", object_id] = data
    return db, vault, expected


def plaintext(db: Path, vault: Path, ids=IDS) -> bytes:
    return b"".join(sections(db, vault, ids, []))


def feed(data: bytes, pieces: int = 1, seed: int = 0) -> tuple[Sink, list]:
    sink = Sink()
    reader = SectionReader(sink.open, PATH)
    cuts = sorted(random.Random(seed).sample(range(len(data) + 1), pieces - 1)) if pieces > 1 else []
    for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
        reader.write(data[a:b])
    return sink, reader.finish()


def line(obj: dict) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def manifest(*entries: tuple[str, str, bytes]) -> bytes:
    return line({"kind": "manifest", "entries": [
        {"kind": k, "name": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for k, n, d in entries]})


def section(kind: str, name: str, data: bytes) -> bytes:
    return line({"kind": kind, "name": name, "size": len(data)}) + data


DB = ("database", "node.sqlite", b"database bytes")


@pytest.mark.parametrize("pieces", [1, 2, 7, 500])
def test_sections_round_trip_however_the_stream_is_cut(store_files, pieces):
    db, vault, expected = store_files
    sink, entries = feed(plaintext(db, vault), pieces, seed=pieces)
    assert sink.content() == expected
    assert [(e.kind, e.name, e.size) for e in entries] == [(k, n, len(d)) for (k, n), d in expected.items()]


def test_encrypted_round_trip_and_nothing_readable(store_files):
    db, vault, expected = store_files
    (vault / f"{IDS[1]}.obj").write_bytes(b"PLAINTEXT-MARKER-42")
    expected["vault", IDS[1]] = b"PLAINTEXT-MARKER-42"
    out = io.BytesIO()
    ad = preamble(HEADER, KEY, created="2026-01-01T00:00:00.000Z", schema_version=3)
    encrypt_chunks(sections(db, vault, IDS, []), out, KEY, ad)
    blob = out.getvalue()
    assert b"PLAINTEXT-MARKER-42" not in blob and IDS[1].encode() not in blob
    f = io.BytesIO(blob)
    pre = read_preamble(f, PATH)
    check_key(pre, KEY)
    sink = Sink()
    reader = SectionReader(sink.open, PATH)
    decrypt_stream(f, reader, pre, KEY, PATH)
    reader.finish()
    assert sink.content() == expected


def test_the_manifest_lists_every_file_with_its_hash(store_files):
    db, vault, expected = store_files
    data = plaintext(db, vault)
    listed = json.loads(data[data.rindex(b'{"entries":'):])  # the last line; vault bytes end just before it
    assert listed["kind"] == "manifest"
    assert [(e["kind"], e["name"], e["size"], e["sha256"]) for e in listed["entries"]] == [
        (k, n, len(d), hashlib.sha256(d).hexdigest()) for (k, n), d in expected.items()]


def test_a_missing_vault_file_fails_the_backup(store_files):
    db, vault, _ = store_files
    (vault / f"{IDS[2]}.obj").unlink()
    with pytest.raises(StoreCorrupt, match=f"hosted object {IDS[2]} is missing"):
        plaintext(db, vault)


def test_an_invalid_object_id_in_the_database_fails_the_backup(store_files):
    db, vault, _ = store_files
    with pytest.raises(StoreCorrupt, match="invalid id"):
        plaintext(db, vault, ["../../node.header"])


@pytest.mark.parametrize(("data", "why"), [
    (section(*DB), "ends before its manifest"),
    (section(*DB)[:-3], "ends before its manifest"),
    (section(*DB) + b'{"kind": "vault"', "ends before its manifest"),
    (section(*DB) + manifest(DB) + b"x", "data after its manifest"),
    (manifest(), "holds no database"),
    (section(*DB) + manifest(), "does not list the files"),
    (section(*DB) + manifest(DB, DB), "does not list the files"),
    (section(*DB) + manifest(("database", "node.sqlite", b"other bytes, same..")), "does not match the manifest"),
    (section(*DB) + line({"kind": "manifest", "entries": [{"kind": "database"}]}), "manifest is not valid"),
    (section(*DB) + section("vault", IDS[0], b"x") + section("vault", IDS[0], b"x"), "twice"),
    (section("vault", IDS[0], b"x"), "unexpected section"),
    (section(*DB) + section(*DB), "unexpected section"),
    (section(*DB) + section("vault", "../../node.header", b"x"), "unexpected section"),
    (section(*DB) + section("vault", IDS[0].upper(), b"x"), "unexpected section"),
    (section(*DB) + section("tarball", "x", b"x"), "unexpected section"),
    (line({"kind": "database", "name": "node.sqlite", "size": -1}), "a size"),
    (line({"kind": "database", "name": "node.sqlite", "size": True}), "a size"),
    (line({"kind": "database", "name": "node.sqlite", "size": 2**60}), "a size"),
    (b"not json\n", "table of contents is not valid"),
    (b"[1, 2]\n", "table of contents is not valid"),
    (b"{" + b" " * 5000, "line is too long"),
])
def test_a_malformed_stream_is_refused(data, why):
    """What a writer bug (or someone holding the key) could produce: each is a clear refusal."""
    with pytest.raises(BackupInvalid, match=why):
        feed(data, 3)


def test_a_hand_made_stream_of_the_documented_layout_is_accepted():
    vault_file = ("vault", IDS[0], b"encrypted object bytes")
    sink, entries = feed(section(*DB) + section(*vault_file) + manifest(DB, vault_file))
    assert sink.content() == {("database", "node.sqlite"): DB[2], ("vault", IDS[0]): vault_file[2]}
    assert len(entries) == 2
