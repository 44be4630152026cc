"""The backup file: one self-describing, encrypted, integrity-protected file per backup.

Layout (format version 2; version 1 differs only in what the stream carries, see below)::

    line 1  JSON: {"format": "dsnode-backup", "version": 2, "created", "schema_version",
                   "store": <the store's KDF header>, "keycheck", "chunk_size"}
    line 2  hex BLAKE2b-256 of line 1 (catches a damaged header before any key is derived)
    then    libsodium secretstream (XChaCha20-Poly1305): 24-byte stream header, then chunks of
            ``chunk_size`` plaintext bytes (+17), the last one shorter and tagged FINAL.

The plaintext of the stream is a sequence of sections, each a JSON line
``{"kind", "name", "size"}`` followed by exactly ``size`` bytes: first ``database``
(``node.sqlite``, a consistent snapshot of the SQLCipher database file), then one ``vault``
section per object the snapshot's ``vault_object`` table lists (the object's file as it is on
disk, ``name`` is the object id). Last comes the manifest, one JSON line
``{"kind": "manifest", "entries": [{"kind", "name", "size", "sha256"}, ...]}`` listing every
section in order with the SHA-256 of its bytes. In version 1 the plaintext is the database
snapshot alone. Either way the payload is encrypted twice (the database by SQLCipher, vault files
by their own object keys) and never exists unencrypted, not even in temporary files.

The stream key is derived from the store key; lines 1-2 are the additional data of every chunk, so
editing the header breaks every MAC; the FINAL tag (and nothing after it) makes truncation visible.
``keycheck`` tells a wrong passphrase apart from a damaged file. Restoring needs the passphrase the
store had when the backup was made (the header carries that salt and those KDF costs). Writing
and reading both stream: memory stays at a few chunks whatever the size of the vault.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, TypeGuard

import nacl.bindings as sodium
from nacl.exceptions import CryptoError

from appliance.errors import BackupInvalid, LocalText, StoreCorrupt, StoreIOError, WrongPassphrase, shown, store_reason
from appliance.storage.connection import connect
from appliance.storage.durable import write_atomically
from appliance.storage.kdf import StoreHeader
from appliance.storage.vault import SUFFIX as VAULT_SUFFIX

log = logging.getLogger(__name__)

FORMAT = "dsnode-backup"
VERSION = 2
READABLE_VERSIONS = (1, 2)
CHUNK_SIZE = 64 * 1024
READ_SIZE = 1 << 20
MAX_PREAMBLE = 16 * 1024
ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL

DATABASE, VAULT, MANIFEST = "database", "vault", "manifest"
DATABASE_NAME = "node.sqlite"
OBJECT_ID = re.compile(r"[0-9a-f]{32}")
MAX_SECTION_LINE = 1024
MANIFEST_BYTES_PER_ENTRY = 256
MAX_SIZE = 2**53
MAX_SCHEMA = 1_000_000  # a schema version in a header above this is damage, not a future dsnode


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    created: str
    schema_version: int
    size: int
    vault_objects: int = 0
    vault_bytes: int = 0


@dataclass(frozen=True)
class Entry:
    """One section of a version-2 backup, as the manifest lists it."""

    kind: str
    name: str
    size: int
    sha256: str

    def to_json(self) -> dict:
        return {"kind": self.kind, "name": self.name, "size": self.size, "sha256": self.sha256}


def stream_key(store_key: bytes) -> bytes:
    return hashlib.blake2b(b"backup", key=store_key, digest_size=32, person=b"dsnode-backup").digest()


def _keycheck(key: bytes) -> str:
    return hashlib.blake2b(b"", key=key, digest_size=16, person=b"dsnode-bk-check").hexdigest()


def _digest(line: bytes) -> bytes:
    return hashlib.blake2b(line, digest_size=32, person=b"dsnode-bk-head").hexdigest().encode("ascii")


def _line(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("ascii") + b"\n"


def preamble(header: StoreHeader, store_key: bytes, *, created: str, schema_version: int,
             version: int = VERSION) -> bytes:
    meta = {"format": FORMAT, "version": version, "created": created, "schema_version": schema_version,
            "store": header.to_json(), "keycheck": _keycheck(stream_key(store_key)), "chunk_size": CHUNK_SIZE}
    line = _line(meta)[:-1]
    return line + b"\n" + _digest(line) + b"\n"


# --- the secretstream layer (both versions) -------------------------------------------------------


def encrypt_chunks(pieces: Iterable[bytes], out: BinaryIO, store_key: bytes, ad: bytes) -> None:
    """Write ``ad`` (the preamble) then the secretstream of the concatenated ``pieces``."""
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    out.write(ad)
    out.write(sodium.crypto_secretstream_xchacha20poly1305_init_push(state, stream_key(store_key)))
    pending = bytearray()
    for piece in pieces:
        pending += piece
        while len(pending) >= CHUNK_SIZE:
            out.write(sodium.crypto_secretstream_xchacha20poly1305_push(state, bytes(pending[:CHUNK_SIZE]), ad,
                                                                        TAG_MESSAGE))
            del pending[:CHUNK_SIZE]
    out.write(sodium.crypto_secretstream_xchacha20poly1305_push(state, bytes(pending), ad, TAG_FINAL))


def encrypt_stream(src: BinaryIO, out: BinaryIO, store_key: bytes, ad: bytes) -> None:
    """Write ``ad`` (the preamble) then the secretstream of everything in ``src``."""
    encrypt_chunks(iter(lambda: src.read(CHUNK_SIZE), b""), out, store_key, ad)


@dataclass(frozen=True)
class Preamble:
    raw: bytes
    header: StoreHeader
    schema_version: int
    keycheck: str
    chunk_size: int
    version: int = VERSION


def read_preamble(f: BinaryIO, path: Path) -> Preamble:
    """Parse and check lines 1-2; BackupInvalid if this is not an intact dsnode backup.

    The digest only shows the header was not damaged by accident: anyone can write a matching one,
    so every field is checked for its type and range before it is used.
    """
    line = f.readline(MAX_PREAMBLE)
    digest = f.readline(2 * 32 + 2)
    if not line.endswith(b"\n") or not line.startswith(b"{"):
        raise BackupInvalid(path, LocalText("storage.reason.not_a_backup"))
    if not hmac.compare_digest(digest, _digest(line[:-1]) + b"\n"):
        raise BackupInvalid(path, LocalText("storage.reason.header_damaged"))
    try:
        meta = _HEADER_JSON.decode(line.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise BackupInvalid(path, LocalText("storage.reason.header_not_json")) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BackupInvalid(path, LocalText("storage.reason.not_a_backup"))
    version = meta.get("version")
    if not _integer(version) or version not in READABLE_VERSIONS:
        raise BackupInvalid(path, LocalText("storage.reason.backup_version", shown(version)))
    schema, keycheck, chunk = meta.get("schema_version"), meta.get("keycheck"), meta.get("chunk_size")
    if not _integer(schema) or not 0 <= schema <= MAX_SCHEMA:
        raise BackupInvalid(path, LocalText("storage.reason.header_schema", shown(schema)))
    if not isinstance(keycheck, str) or not re.fullmatch(r"[0-9a-f]{32}", keycheck):
        raise BackupInvalid(path, LocalText("storage.reason.header_keycheck"))
    if not _integer(chunk) or not 1024 <= chunk <= 16 * 1024 * 1024:
        raise BackupInvalid(path, LocalText("storage.reason.header_chunk_size"))
    try:
        header = StoreHeader.from_json(meta.get("store"))
    except ValueError as e:
        raise BackupInvalid(path, LocalText("storage.reason.header_invalid", str(e))) from None
    return Preamble(line + digest, header, schema, keycheck, chunk, version)


def _integer(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _bounded_int(digits: str) -> int:
    if len(digits) > 20:  # no field is near this; int() would take up to 4,300 digits
        raise ValueError("a number is too long")
    return int(digits)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number")


_HEADER_JSON = json.JSONDecoder(parse_int=_bounded_int, parse_constant=_no_constant)


def check_key(pre: Preamble, store_key: bytes) -> None:
    if not hmac.compare_digest(_keycheck(stream_key(store_key)), pre.keycheck):
        raise WrongPassphrase()


class Sink(Protocol):
    """Where decrypted bytes go: a new file, or a :class:`SectionReader` that splits them into files."""

    def write(self, data: bytes | memoryview, /) -> object: ...

    def close(self) -> object: ...


def decrypt_stream(f: BinaryIO, out: Sink, pre: Preamble, store_key: bytes, path: Path) -> None:
    """Write the plaintext of the stream at ``f``'s position to ``out``; BackupInvalid on any damage.

    ``out`` only ever receives chunks that have passed their MAC, in order.
    """
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    stream_header = f.read(sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES)
    try:
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, stream_header, stream_key(store_key))
        while True:
            block = f.read(pre.chunk_size + ABYTES)
            if not block:
                raise BackupInvalid(path, LocalText("storage.reason.backup_truncated"))
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(state, block, pre.raw)
            out.write(plain)
            if tag == TAG_FINAL:
                break
    except (CryptoError, ValueError):
        raise BackupInvalid(path, LocalText("storage.reason.backup_damaged")) from None
    if f.read(1):
        raise BackupInvalid(path, LocalText("storage.reason.backup_trailing_data"))


# --- version 2: writing the sections --------------------------------------------------------------


def referenced_objects(snapshot: Path, store_key: bytes) -> list[str]:
    """The vault object ids the database snapshot lists (none if it has no vault table)."""
    conn = connect(snapshot, store_key)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'vault_object'").fetchone():
            return []
        return [row[0] for row in conn.execute("SELECT id FROM vault_object ORDER BY id")]
    finally:
        conn.close()


def sections(snapshot: Path, vault_dir: Path, object_ids: Iterable[str], entries: list[Entry]) -> Iterator[bytes]:
    """The version-2 plaintext: the database, each vault file, the manifest; appends to ``entries``."""
    yield from _file_section(DATABASE, DATABASE_NAME, snapshot, entries)
    for object_id in object_ids:
        if not OBJECT_ID.fullmatch(object_id):
            raise StoreCorrupt(vault_dir.parent, store_reason("vault_bad_id", object_id))
        yield from _file_section(VAULT, object_id, vault_dir / (object_id + VAULT_SUFFIX), entries)
    yield _line({"kind": MANIFEST, "entries": [e.to_json() for e in entries]})


def _file_section(kind: str, name: str, path: Path, entries: list[Entry]) -> Iterator[bytes]:
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the `with f` below; the try covers only the open
    except FileNotFoundError:
        if kind != VAULT:
            raise
        raise StoreCorrupt(path.parent.parent, store_reason("vault_file_missing", name)) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        yield _line({"kind": kind, "name": name, "size": size})
        digest, done = hashlib.sha256(), 0
        while done < size:
            block = f.read(min(READ_SIZE, size - done))
            if not block:
                raise StoreIOError(path, store_reason("shrank"))
            digest.update(block)
            done += len(block)
            yield block
    entries.append(Entry(kind, name, size, digest.hexdigest()))


def write_backup(dest: Path, snapshot: Path, vault_dir: Path, store_key: bytes, ad: bytes) -> tuple[int, int]:
    """Write a version-2 backup of ``snapshot`` and the vault files it references to ``dest``.

    ``dest`` appears only complete (temporary file, fsync, rename). Returns (vault objects, their bytes).
    """
    object_ids = referenced_objects(snapshot, store_key)
    entries: list[Entry] = []
    try:
        write_atomically(dest, lambda out: encrypt_chunks(sections(snapshot, vault_dir, object_ids, entries),
                                                          out, store_key, ad))
    except OSError as e:
        raise StoreIOError(dest, e.strerror or str(e)) from None
    vault = [e for e in entries if e.kind == VAULT]
    return len(vault), sum(e.size for e in vault)


# --- version 2: reading the sections --------------------------------------------------------------


class SectionReader:
    """Takes the version-2 plaintext as it is decrypted and writes each section where ``open_file`` says.

    ``open_file(kind, name)`` returns a writable file for the section; it is closed when the section
    ends. Call :meth:`finish` after the stream ended: it checks the manifest against every section
    read and returns the entries. Any structural problem is BackupInvalid.
    """

    def __init__(self, open_file: Callable[[str, str], Sink], path: Path) -> None:
        self._open = open_file
        self._path = path
        self._line = bytearray()
        self._file: Sink | None = None
        self._section: tuple[str, str, int] | None = None
        self._left = 0
        self._hash = hashlib.sha256()
        self._names: set[str] = set()
        self._manifest: bytes | None = None
        self.entries: list[Entry] = []

    def _invalid(self, why: LocalText) -> BackupInvalid:
        return BackupInvalid(self._path, why)

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data)
        while view:
            if self._manifest is not None:
                raise self._invalid(LocalText("storage.reason.after_manifest"))
            if self._section is not None:
                assert self._file is not None  # opened with the section
                n = min(self._left, len(view))
                self._file.write(view[:n])
                self._hash.update(view[:n])
                self._left -= n
                view = view[n:]
                if not self._left:
                    self._end_section()
                continue
            limit = MAX_SECTION_LINE + MANIFEST_BYTES_PER_ENTRY * len(self.entries)
            head = view[: limit + 1 - len(self._line)].tobytes()
            end = head.find(b"\n")
            if end < 0:
                self._line += head
                view = view[len(head):]
                if len(self._line) > limit:
                    raise self._invalid(LocalText("storage.reason.toc_line_too_long"))
                continue
            self._line += head[:end]
            view = view[end + 1:]
            line, self._line = bytes(self._line), bytearray()
            self._start(line)
        return len(data)

    def _start(self, line: bytes) -> None:
        try:
            meta = json.loads(line)
            kind, name, size = meta["kind"], meta.get("name"), meta.get("size")
        except (ValueError, KeyError, TypeError, RecursionError):
            raise self._invalid(LocalText("storage.reason.toc_invalid")) from None
        if kind == MANIFEST:
            self._manifest = line
            return
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SIZE:
            raise self._invalid(LocalText("storage.reason.toc_size"))
        if kind == DATABASE and not self.entries and name == DATABASE_NAME:
            pass
        elif kind == VAULT and self.entries and isinstance(name, str) and OBJECT_ID.fullmatch(name):
            if name in self._names:
                raise self._invalid(LocalText("storage.reason.vault_object_twice", name))
        else:
            raise self._invalid(LocalText("storage.reason.toc_unexpected_section"))
        self._names.add(name)
        self._section, self._left, self._hash = (kind, name, size), size, hashlib.sha256()
        self._file = self._open(kind, name)
        if not size:
            self._end_section()

    def _end_section(self) -> None:
        assert self._section is not None and self._file is not None
        kind, name, size = self._section
        self._file.close()
        self._file, self._section = None, None
        self.entries.append(Entry(kind, name, size, self._hash.hexdigest()))

    def close(self) -> None:
        """Close the file of an unfinished section (after a failure)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def finish(self) -> list[Entry]:
        if self._section is not None or self._line or self._manifest is None:
            raise self._invalid(LocalText("storage.reason.ends_before_manifest"))
        try:
            listed = [Entry(str(e["kind"]), str(e["name"]), int(e["size"]), str(e["sha256"]))
                      for e in json.loads(self._manifest)["entries"]]
        except (ValueError, KeyError, TypeError, RecursionError):
            raise self._invalid(LocalText("storage.reason.manifest_invalid")) from None
        if len(listed) != len(self.entries):
            raise self._invalid(LocalText("storage.reason.manifest_incomplete"))
        for want, got in zip(listed, self.entries, strict=True):
            if (want.kind, want.name, want.size) != (got.kind, got.name, got.size) or \
                    not hmac.compare_digest(want.sha256, got.sha256):
                kind = LocalText("storage.reason.kind_database") if got.kind == DATABASE else LocalText(
                    "storage.reason.kind_vault")
                raise self._invalid(LocalText("storage.reason.file_not_in_manifest", kind, got.name))
        if not self.entries:
            raise self._invalid(LocalText("storage.reason.no_database"))
        return self.entries
