"""The backup file: one self-describing, encrypted, integrity-protected file per backup.

Layout::

    line 1  JSON: {"format": "dsnode-backup", "version": 1, "created", "schema_version",
                   "store": <the store's KDF header>, "keycheck", "chunk_size"}
    line 2  hex BLAKE2b-256 of line 1 (catches a damaged header before any key is derived)
    then    libsodium secretstream (XChaCha20-Poly1305): 24-byte stream header, then chunks of
            ``chunk_size`` plaintext bytes (+17), the last one shorter and tagged FINAL.

The plaintext of the stream is a consistent snapshot of the SQLCipher database file, so the
payload is encrypted twice and never exists unencrypted, not even in temporary files. The stream
key is derived from the store key; lines 1-2 are the additional data of every chunk, so editing
the header breaks every MAC; the FINAL tag (and nothing after it) makes truncation visible.
``keycheck`` tells a wrong passphrase apart from a damaged file. Restoring needs the passphrase
the store had when the backup was made (the header carries that salt and those KDF costs).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import nacl.bindings as sodium
from nacl.exceptions import CryptoError

from appliance.errors import BackupInvalid, StoreFromFuture, WrongPassphrase
from appliance.storage.kdf import StoreHeader

log = logging.getLogger(__name__)

FORMAT = "dsnode-backup"
VERSION = 1
CHUNK_SIZE = 64 * 1024
MAX_PREAMBLE = 16 * 1024
ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    created: str
    schema_version: int
    size: int


def stream_key(store_key: bytes) -> bytes:
    return hashlib.blake2b(b"backup", key=store_key, digest_size=32, person=b"dsnode-backup").digest()


def _keycheck(key: bytes) -> str:
    return hashlib.blake2b(b"", key=key, digest_size=16, person=b"dsnode-bk-check").hexdigest()


def _digest(line: bytes) -> bytes:
    return hashlib.blake2b(line, digest_size=32, person=b"dsnode-bk-head").hexdigest().encode("ascii")


def preamble(header: StoreHeader, store_key: bytes, *, created: str, schema_version: int) -> bytes:
    meta = {"format": FORMAT, "version": VERSION, "created": created, "schema_version": schema_version,
            "store": header.to_json(), "keycheck": _keycheck(stream_key(store_key)), "chunk_size": CHUNK_SIZE}
    line = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode("ascii")
    return line + b"\n" + _digest(line) + b"\n"


def encrypt_stream(src: BinaryIO, out: BinaryIO, store_key: bytes, ad: bytes) -> None:
    """Write ``ad`` (the preamble) then the secretstream of everything in ``src``."""
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    out.write(ad)
    out.write(sodium.crypto_secretstream_xchacha20poly1305_init_push(state, stream_key(store_key)))
    while True:
        block = src.read(CHUNK_SIZE)
        tag = TAG_FINAL if len(block) < CHUNK_SIZE else TAG_MESSAGE
        out.write(sodium.crypto_secretstream_xchacha20poly1305_push(state, block, ad, tag))
        if tag == TAG_FINAL:
            return


@dataclass(frozen=True)
class Preamble:
    raw: bytes
    header: StoreHeader
    schema_version: int
    keycheck: str
    chunk_size: int


def read_preamble(f: BinaryIO, path: Path) -> Preamble:
    """Parse and check lines 1-2; BackupInvalid if this is not an intact dsnode backup."""
    line = f.readline(MAX_PREAMBLE)
    digest = f.readline(2 * 32 + 2)
    if not line.endswith(b"\n") or not line.startswith(b"{"):
        raise BackupInvalid(path, "it is not a dsnode backup")
    if not hmac.compare_digest(digest, _digest(line[:-1]) + b"\n"):
        raise BackupInvalid(path, "its header is damaged")
    try:
        meta = json.loads(line)
        if meta.get("format") != FORMAT:
            raise ValueError("it is not a dsnode backup")
        if meta.get("version") != VERSION:
            raise ValueError(f"backup format version {meta.get('version')!r} is not supported")
        pre = Preamble(line + digest, StoreHeader.from_json(meta["store"]), int(meta["schema_version"]),
                       str(meta["keycheck"]), int(meta["chunk_size"]))
    except StoreFromFuture:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise BackupInvalid(path, f"its header is not valid ({e})") from None
    if not 1024 <= pre.chunk_size <= 16 * 1024 * 1024:
        raise BackupInvalid(path, "its header is not valid (chunk size)")
    return pre


def check_key(pre: Preamble, store_key: bytes) -> None:
    if not hmac.compare_digest(_keycheck(stream_key(store_key)), pre.keycheck):
        raise WrongPassphrase()


def decrypt_stream(f: BinaryIO, out: BinaryIO, pre: Preamble, store_key: bytes, path: Path) -> None:
    """Write the plaintext of the stream at ``f``'s position to ``out``; BackupInvalid on any damage."""
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    stream_header = f.read(sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES)
    try:
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, stream_header, stream_key(store_key))
        while True:
            block = f.read(pre.chunk_size + ABYTES)
            if not block:
                raise BackupInvalid(path, "it is truncated (the end of the data is missing)")
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(state, block, pre.raw)
            out.write(plain)
            if tag == TAG_FINAL:
                break
    except (CryptoError, ValueError):
        raise BackupInvalid(path, "its content is damaged or was changed (authentication failed)") from None
    if f.read(1):
        raise BackupInvalid(path, "there is unexpected data after the end of the backup")
