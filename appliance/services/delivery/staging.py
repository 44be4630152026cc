"""The consumer's staging of an incoming transfer: one file per transfer, chunk ``i`` sealed
(SecretBox, a key from the store) in slot ``i`` of fixed size, so chunks arrive in any order, an
interrupted transfer keeps what it has, and nothing is readable at rest."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import nacl.exceptions
import nacl.secret
import nacl.utils

from appliance.services.delivery import manifest as mf

SEAL = nacl.secret.SecretBox.NONCE_SIZE + nacl.secret.SecretBox.MACBYTES  # what sealing adds to a chunk


class Staging:
    def __init__(self, directory: Path, key: bytes) -> None:
        self._staging = Path(directory)
        self._box = nacl.secret.SecretBox(key)

    def path(self, transfer_id: str) -> Path:
        """One file per incoming transfer: chunk ``i`` sealed (SecretBox) in slot ``i`` of fixed size."""
        return self._staging / (hashlib.sha256(transfer_id.encode()).hexdigest()[:32] + ".part")

    def keep(self, transfer_id: str, index: int, data: bytes, chunk_size: int, fd: int | None = None) -> None:
        """Seal chunk ``index`` into its slot. No fsync: a chunk a power cut loses fails the whole-object
        check at the end, and the transfer fetches it again."""
        handle = self.open(transfer_id) if fd is None else fd
        try:
            sealed = self._box.encrypt(data, nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE))
            os.pwrite(handle, sealed, index * (chunk_size + SEAL))
        finally:
            if fd is None:
                os.close(handle)

    def open(self, transfer_id: str) -> int:
        self._staging.mkdir(mode=0o700, parents=True, exist_ok=True)
        return os.open(self.path(transfer_id), os.O_RDWR | os.O_CREAT, 0o600)

    def chunks(self, transfer_id: str, m: dict) -> Iterator[bytes]:
        """The staged chunks in order, opened (a damaged one reads as empty: the whole check fails)."""
        slot = m["chunkSize"] + SEAL
        fd = os.open(self.path(transfer_id), os.O_RDONLY)
        try:
            for i in range(len(m["chunks"])):
                try:
                    yield self._box.decrypt(os.pread(fd, mf.chunk_length(m, i) + SEAL, i * slot))
                except nacl.exceptions.CryptoError:
                    yield b""
        finally:
            os.close(fd)

    def remove(self, transfer_id: str) -> None:
        self.path(transfer_id).unlink(missing_ok=True)
