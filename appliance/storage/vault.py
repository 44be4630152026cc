"""The vault: large payloads (hosted datasets, later delivered files) encrypted beside the database.

One object is one file ``vault/<id>.obj``::

    b"DSNV" || version (1 byte) || secretstream header (24 bytes)
    then chunks of CHUNK_SIZE plaintext bytes (+17), the last one shorter and tagged FINAL

libsodium ``secretstream_xchacha20poly1305`` with a random key per object; the magic, the version
and the object id are the additional data of every chunk, so a file renamed to another object's
name does not open, and the FINAL tag makes truncation visible. The object key is kept in the
table ``vault_object``, wrapped (SecretBox) with the store's ``vault`` subkey, inside the SQLCipher
database. Nothing is ever written in plaintext.

Writing is two-phase so an object and its row appear together: :meth:`Vault.put` writes
``.<id>.tmp-*``, fsyncs and renames it to ``<id>.obj``; the caller then calls :meth:`Vault.record`
inside its write transaction, or :meth:`Vault.discard` if that transaction failed. A crash between
the two leaves a file without a row, which :meth:`Vault.clean_orphans` removes at the next open.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import queue
import secrets
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import nacl.bindings as sodium
import nacl.exceptions
import nacl.secret
from nacl._sodium import ffi, lib  # type: ignore[import-not-found]  # the C calls, without copying out

from appliance.errors import LocalText, VaultError
from appliance.storage.database import Database
from appliance.storage.durable import fsync_dir, temp_name

log = logging.getLogger(__name__)

MAGIC = b"DSNV"
VERSION = 1
CHUNK_SIZE = 1 << 20
ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
HEADER_BYTES = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
SUFFIX = ".obj"
FREE_SPACE_MARGIN = 64 * 1024 * 1024


@dataclass(frozen=True)
class VaultObject:
    """An object written to disk; it exists for the store once :meth:`Vault.record` committed it."""

    id: str
    size: int
    sha256: str
    key: bytes


def _ad(object_id: str) -> bytes:
    return MAGIC + bytes([VERSION]) + object_id.encode("ascii")


class Vault:
    def __init__(self, db: Database, directory: Path, wrapping_key: bytes) -> None:
        self._db = db
        self.dir = Path(directory)
        self._box = nacl.secret.SecretBox(wrapping_key)

    # --- writing ------------------------------------------------------------------------------

    def put(self, chunks: Iterable[bytes], *, expected_size: int | None = None, name: str = "data",
            digest: bool = True) -> VaultObject:
        """Encrypt ``chunks`` (any sizes) into a new object file; not yet part of the store. With
        ``digest=False`` the object's ``sha256`` is left empty (a caller that hashes the bytes itself)."""
        writer = self.writer(expected_size=expected_size, name=name, digest=digest)
        try:
            for data in chunks:
                writer.write(data)
        except OSError as e:  # reading the source
            writer.abort()
            raise VaultError(name, e.strerror or str(e)) from None
        except BaseException:
            writer.abort()
            raise
        return writer.close()

    def writer(self, *, expected_size: int | None = None, name: str = "data", digest: bool = True) -> VaultWriter:
        """A new object written piece by piece (:class:`VaultWriter`); close it, or abort it."""
        if expected_size is not None:
            self._check_space(expected_size, name)
        return VaultWriter(self.dir, name, digest=digest)

    def put_file(self, path: Path, *, progress: Callable[[int, int], None] | None = None) -> VaultObject:
        size = path.stat().st_size
        with open(path, "rb") as f:
            return self.put(_read_blocks(f, size, progress), expected_size=size, name=str(path))

    def record(self, conn, obj: VaultObject, created: str) -> None:
        """Make ``obj`` part of the store, inside the caller's write transaction."""
        conn.execute("INSERT INTO vault_object (id, wrapped, size, sha256, created) VALUES (?, ?, ?, ?, ?)",
                     (obj.id, bytes(self._box.encrypt(obj.key)), obj.size, obj.sha256, created))

    def discard(self, obj: VaultObject) -> None:
        """Remove the file of an object whose transaction did not commit."""
        (self.dir / (obj.id + SUFFIX)).unlink(missing_ok=True)

    def delete(self, conn, object_id: str) -> None:
        """Forget an object inside a write transaction; its file goes at the next clean-up."""
        conn.execute("DELETE FROM vault_object WHERE id = ?", (object_id,))

    # --- reading ------------------------------------------------------------------------------

    def open(self, object_id: str) -> Iterator[bytes]:
        """The plaintext of an object, chunk by chunk; VaultError if it is missing or was changed."""
        row = self._db.read(lambda c: c.execute("SELECT wrapped FROM vault_object WHERE id = ?",
                                                (object_id,)).fetchone())
        if row is None:
            raise VaultError(object_id, LocalText("storage.reason.vault_no_object"))
        key = self._box.decrypt(bytes(row[0]))
        return _decrypt(self.dir / (object_id + SUFFIX), key, _ad(object_id), object_id)

    def open_stream(self, object_id: str) -> io.BufferedReader:
        """The plaintext of an object as a read-only binary stream (decrypted as it is read)."""
        return io.BufferedReader(_ChunkStream(self.open(object_id)), buffer_size=CHUNK_SIZE)

    def exists(self, object_id: str) -> bool:
        return (self.dir / (object_id + SUFFIX)).is_file()

    # --- housekeeping -------------------------------------------------------------------------

    def clean_orphans(self) -> int:
        """Delete object files without a row, and interrupted writes (call before any put)."""
        if not self.dir.is_dir():
            return 0
        known = set(self._db.read(lambda c: [r[0] for r in c.execute("SELECT id FROM vault_object")]))
        removed = 0
        for path in self.dir.iterdir():
            stale_tmp = path.name.startswith(".") and f"{SUFFIX}.tmp-" in path.name
            orphan = path.suffix == SUFFIX and len(path.stem) == 32 and path.stem not in known
            if stale_tmp or orphan:
                path.unlink(missing_ok=True)
                removed += 1
        if removed:
            log.info("removed %d vault file(s) left by interrupted writes", removed)
        return removed

    def _check_space(self, size: int, name: str) -> None:
        free = shutil.disk_usage(self.dir).free
        if free < size + FREE_SPACE_MARGIN:
            raise VaultError(name, LocalText("storage.reason.vault_space", size // (1 << 20) + 1, free // (1 << 20)))


class _ChunkStream(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        super().close()


def _read_blocks(f: BinaryIO, total: int, progress) -> Iterator[bytes]:
    done = 0
    while block := f.read(CHUNK_SIZE):
        done += len(block)
        if progress:
            progress(done, total)
        yield block


class VaultWriter:
    """One object written as its bytes come (:meth:`Vault.writer`): cut into CHUNK_SIZE pieces (a
    piece given whole is not copied), each encrypted straight into a reused buffer and written, the
    SHA-256 computed on a thread beside (hashlib lets go of the GIL), the file fsynced once, at
    :meth:`close`, and renamed to its object name. Until then it is a hidden temporary file, encrypted
    like any object, which :meth:`abort` (or :meth:`Vault.clean_orphans` after a crash) removes.
    A piece given must not change afterwards (it may be hashed later)."""

    def __init__(self, directory: Path, name: str, *, digest: bool = True) -> None:
        self.id = secrets.token_hex(16)
        self._name = name
        self._key = sodium.crypto_secretstream_xchacha20poly1305_keygen()
        self._ad = _ad(self.id)
        self._target = directory / (self.id + SUFFIX)
        self._tmp = temp_name(self._target)
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        self._out = ffi.new("unsigned char[]", CHUNK_SIZE + ABYTES)
        self._pending = bytearray()
        self._held: bytes | memoryview | None = None  # a whole piece, pushed once it is known not to be the last
        self.size = 0
        self._hashing = _Hashing() if digest else None
        try:
            self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
            self._write(MAGIC + bytes([VERSION]))
            self._write(sodium.crypto_secretstream_xchacha20poly1305_init_push(self._state, self._key))
        except OSError as e:
            self.abort()
            raise VaultError(name, e.strerror or str(e)) from None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        try:
            if not self._pending and len(view) == CHUNK_SIZE:
                self._piece(view)
                return
            while view:
                take = min(len(view), CHUNK_SIZE - len(self._pending))
                self._pending += view[:take]
                view = view[take:]
                if len(self._pending) == CHUNK_SIZE:
                    self._piece(bytes(self._pending))
                    self._pending.clear()
        except OSError as e:
            self.abort()
            raise VaultError(self._name, e.strerror or str(e)) from None

    def close(self) -> VaultObject:
        """The last piece tagged FINAL, the file fsynced and renamed: the object (not yet recorded)."""
        try:
            if self._held is not None and self._pending:
                self._push(self._held, TAG_MESSAGE)
                self._held = None
            self._push(self._held if self._held is not None else bytes(self._pending), TAG_FINAL)
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            os.replace(self._tmp, self._target)
            fsync_dir(self._target.parent)
        except OSError as e:
            self.abort()
            raise VaultError(self._name, e.strerror or str(e)) from None
        except BaseException:
            self.abort()
            raise
        sha256 = self._hashing.close() if self._hashing is not None else ""
        return VaultObject(self.id, self.size, sha256, self._key)

    def abort(self) -> None:
        """Forget the object: its file is removed (nothing of it stays)."""
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._hashing is not None:
            self._hashing.close()
        self._tmp.unlink(missing_ok=True)
        self._target.unlink(missing_ok=True)

    def _piece(self, piece: bytes | memoryview) -> None:
        if self._held is not None:
            self._push(self._held, TAG_MESSAGE)
        self._held = piece

    def _push(self, piece: bytes | memoryview, tag: int) -> None:
        n = len(piece)
        rc = lib.crypto_secretstream_xchacha20poly1305_push(self._state.statebuf, self._out, ffi.NULL,
                                                           ffi.from_buffer(piece), n, self._ad, len(self._ad), tag)
        if rc != 0:
            raise VaultError(self._name, LocalText("storage.reason.vault_damaged"))
        self._write(ffi.buffer(self._out, n + ABYTES))
        if self._hashing is not None:
            self._hashing.update(piece)
        self.size += n

    def _write(self, data) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]


class _Hashing:
    """SHA-256 of the pieces given, on a thread of its own (at most a few pieces waiting)."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue(4)
        self._digest = hashlib.sha256()
        self._thread = threading.Thread(target=self._run, name="dsnode-vault-hash", daemon=True)
        self._thread.start()
        self._result = ""

    def update(self, piece) -> None:
        self._queue.put(piece)

    def close(self) -> str:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
            self._result = self._digest.hexdigest()
        return self._result

    def _run(self) -> None:
        while (piece := self._queue.get()) is not None:
            self._digest.update(piece)


def _decrypt(path: Path, key: bytes, ad: bytes, object_id: str) -> Iterator[bytes]:
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the `with f` below; the try covers only the open
    except OSError as e:
        raise VaultError(object_id, e.strerror or str(e)) from None
    with f:
        if f.read(len(MAGIC) + 1) != MAGIC + bytes([VERSION]):
            raise VaultError(object_id, LocalText("storage.reason.vault_unknown_version"))
        state = sodium.crypto_secretstream_xchacha20poly1305_state()
        try:
            sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, f.read(HEADER_BYTES), key)
            while True:
                block = f.read(CHUNK_SIZE + ABYTES)
                if not block:
                    raise VaultError(object_id, LocalText("storage.reason.vault_truncated"))
                plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(state, block, ad)
                yield plain
                if tag == TAG_FINAL:
                    break
        except (nacl.exceptions.CryptoError, ValueError):
            raise VaultError(object_id, LocalText("storage.reason.vault_damaged")) from None
        if f.read(1):
            raise VaultError(object_id, LocalText("storage.reason.vault_trailing_data"))
