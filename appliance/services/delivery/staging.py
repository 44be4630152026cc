"""The consumer's staging of an incoming transfer: one file per transfer, chunk ``i`` sealed in slot
``i`` of fixed size, so chunks arrive in any order, an interrupted transfer keeps what it has, and
nothing is readable at rest.

A slot is ``nonce (12 bytes) || AES-256-GCM(chunk) || tag (16 bytes)``, under a key of this transfer
(keyed BLAKE2b of the transfer id with the store's ``incoming`` subkey) and the chunk's index as
associated data, so a slot copied to another place or another transfer's file does not open.
AES-GCM (``cryptography``, AES-NI, the GIL released) runs at several GB/s here, where PyNaCl's
SecretBox managed 0.35 GB/s and was the consumer's slowest stage (``python -m bench delivery``)."""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from appliance.errors import ApplianceError
from appliance.services.delivery import manifest as mf

log = logging.getLogger(__name__)

NONCE = 12
TAG = 16
SEAL = NONCE + TAG  # what sealing adds to a chunk


class Staging:
    def __init__(self, directory: Path, key: bytes, vault=None) -> None:
        self._staging = Path(directory)
        self._key = key
        self.in_order = InOrder(vault) if vault is not None else None  # the vault write as chunks arrive
        self._aead: tuple[str, AESGCM] | None = None  # the last transfer's cipher

    def path(self, transfer_id: str) -> Path:
        """One file per incoming transfer: chunk ``i`` sealed in slot ``i`` of fixed size."""
        return self._staging / (hashlib.sha256(transfer_id.encode()).hexdigest()[:32] + ".part")

    def _cipher(self, transfer_id: str) -> AESGCM:
        cached = self._aead
        if cached is not None and cached[0] == transfer_id:
            return cached[1]
        key = hashlib.blake2b(transfer_id.encode("utf-8"), key=self._key, digest_size=32,
                              person=b"dsnode-staging").digest()
        aead = AESGCM(key)
        self._aead = (transfer_id, aead)
        return aead

    def keep(self, transfer_id: str, index: int, data: bytes | memoryview, chunk_size: int,
             fd: int | None = None) -> None:
        """Seal chunk ``index`` into its slot. No fsync: a chunk a power cut loses fails the whole-object
        check at the end, and the transfer fetches it again."""
        handle = self.open(transfer_id) if fd is None else fd
        try:
            nonce = os.urandom(NONCE)
            sealed = self._cipher(transfer_id).encrypt(nonce, data, index.to_bytes(8, "big"))
            os.pwritev(handle, [nonce, sealed], index * (chunk_size + SEAL))
        finally:
            if fd is None:
                os.close(handle)

    def open(self, transfer_id: str) -> int:
        self._staging.mkdir(mode=0o700, parents=True, exist_ok=True)
        return os.open(self.path(transfer_id), os.O_RDWR | os.O_CREAT, 0o600)

    def chunks(self, transfer_id: str, m, indexes: Iterable[int] | None = None) -> Iterator[bytes]:
        """The staged chunks ``indexes`` (all of them by default) in order, opened; ``m`` is the
        verified manifest or its layout. A damaged chunk reads as empty: the whole check fails."""
        chunk_size = m.chunk_size if hasattr(m, "chunk_size") else m["chunkSize"]
        if indexes is None:
            indexes = range(m.total if hasattr(m, "total") else len(m["chunks"]))
        slot = chunk_size + SEAL
        aead = self._cipher(transfer_id)
        fd = os.open(self.path(transfer_id), os.O_RDONLY)
        try:
            for i in indexes:
                sealed = memoryview(os.pread(fd, mf.chunk_length(m, i) + SEAL, i * slot))
                try:
                    yield aead.decrypt(sealed[:NONCE], sealed[NONCE:], i.to_bytes(8, "big"))
                except (InvalidTag, ValueError):
                    yield b""
        finally:
            os.close(fd)

    def remove(self, transfer_id: str) -> None:
        if self.in_order is not None:
            self.in_order.drop(transfer_id)
        self.path(transfer_id).unlink(missing_ok=True)


class InOrder:
    """The consumer's vault write while the chunks arrive: a delivery whose verified chunks come in
    order from its first (the direct path asks for them so) is written into its vault objects then,
    on a thread of its own (the vault's encryption and SHA-256 let go of the GIL), so finishing only
    closes them, instead of reading the staging file back and encrypting it all after the last
    chunk. The chunks are kept in staging as well: staging is what a resume after a crash goes on
    from. The objects stay hidden, encrypted files until :meth:`take`; a stream that breaks (a
    chunk out of order, a fetch that ends before the last, a vault error such as a full disk) is
    dropped whole, and finishing then goes the staged way. At most ``depth`` chunks wait."""

    def __init__(self, vault, depth: int = 4) -> None:
        self._vault, self._depth = vault, depth
        self._lock = threading.Lock()
        self._streams: dict[str, _Stream] = {}
        self._done: dict[str, tuple[list, str]] = {}  # transfer -> its objects written whole, the whole's SHA-256

    def feed(self, transfer_id: str, where: mf.Layout, index: int, data: bytes | memoryview) -> None:
        """Verified chunk ``index``: into the stream when it is the next one (a stream starts at chunk 0)."""
        with self._lock:
            stream = self._streams.get(transfer_id)
            if stream is None and index == 0 and transfer_id not in self._done:
                stream = self._streams[transfer_id] = _Stream(self._vault, where, self._depth)
        if stream is None:
            return
        if not stream.feed(index, data):
            self._end(transfer_id, keep=False)

    def end(self, transfer_id: str) -> None:
        """The fetch stopped: a stream that got every chunk is kept for :meth:`take`, any other dropped."""
        self._end(transfer_id, keep=True)

    def take(self, transfer_id: str) -> tuple[list, str] | None:
        """The objects (not yet recorded) and the whole's SHA-256 when all were written in order, else None."""
        with self._lock:
            return self._done.pop(transfer_id, None)

    def drop(self, transfer_id: str) -> None:
        self._end(transfer_id, keep=False)
        for obj in (self.take(transfer_id) or ([], ""))[0]:
            self._vault.discard(obj)

    def _end(self, transfer_id: str, *, keep: bool) -> None:
        with self._lock:
            stream = self._streams.pop(transfer_id, None)
        if stream is None:
            return
        done = stream.close()
        if keep and done is not None:
            with self._lock:
                self._done[transfer_id] = done


class _Stream:
    """One delivery's objects written in order by a thread of their own (see :class:`InOrder`)."""

    def __init__(self, vault, where: mf.Layout, depth: int) -> None:
        self._vault, self._where = vault, where
        self._next = 0
        self._queue: queue.Queue = queue.Queue(depth)
        self._objects: list = []
        self._failed = False
        self._whole = ""
        self._thread = threading.Thread(target=self._run, name="dsnode-inorder", daemon=True)
        self._thread.start()

    def feed(self, index: int, data: bytes | memoryview) -> bool:
        """False when the stream cannot go on (the chunk is not the next, or writing failed)."""
        if index != self._next or self._failed:
            return False
        self._next += 1
        self._queue.put(data)
        return True

    def close(self) -> tuple[list, str] | None:
        """Wait for the thread; the objects and the whole's SHA-256 if every chunk was written, else None."""
        self._queue.put(None)
        self._thread.join()
        complete = not self._failed and self._next == self._where.total
        if not complete or len(self._objects) != len(self._where.objects):
            for obj in self._objects:
                self._vault.discard(obj)
            return None
        return self._objects, self._whole

    def _run(self) -> None:
        where = self._where
        objects = where.objects
        several = hashlib.sha256() if len(objects) != 1 else None
        writer, k, left = None, -1, 0
        try:
            while (data := self._queue.get()) is not None:
                if self._failed:
                    continue
                while writer is None:
                    k += 1
                    writer = self._vault.writer(expected_size=objects[k]["size"], name="received")
                    left = len(where.chunks_of(k))
                    if left == 0:  # an empty object
                        self._objects.append(writer.close())
                        writer = None
                writer.write(data)
                if several is not None:
                    several.update(data)
                left -= 1
                if left == 0:
                    self._objects.append(writer.close())
                    writer = None
                while writer is None and k + 1 < len(objects) and not where.chunks_of(k + 1):
                    k += 1  # empty objects after the last chunk of the one before
                    self._objects.append(self._vault.writer(expected_size=0, name="received").close())
        except ApplianceError as e:
            log.info("writing the received objects as they arrive stopped (%s); they go from staging",
                     e.message("en"))
            self._failed = True
        finally:
            if writer is not None:
                writer.abort()
        self._whole = several.hexdigest() if several is not None else (
            self._objects[0].sha256 if self._objects else "")
