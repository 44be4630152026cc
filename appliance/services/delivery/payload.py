"""The provider's side of what is delivered: the payload of a product (masked as its resources'
rules say) as one or more named objects, each cut into chunks with their hashes, kept one after the
other in one vault object and read back chunk by chunk; and what the agreed terms allow (delivery
at all, and until when)."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import queue
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath

from appliance.clock import rfc3339
from appliance.errors import ChunkCorrupt, DeliveryError, LocalText
from appliance.services.delivery import manifest as mf

COMPUTE_ONLY = "urn:dsnode:odrl:aggregateOnly"
SOURCE = "source:"  # a payload sent from its referenced source, not from a vault object (referenced_payload)
BLOCK = 1 << 20  # bytes read from a source at a time
RELAY_CHUNK = 128 * 1024  # one relayed message's data: sealed, it stays under the broker's 256 KiB message limit
DIRECT_CHUNK = 1 << 20
CHUNK_MAX = 2 << 20  # with its index, a chunk fits one channel frame (net/channel.py MAX_PAYLOAD, 4 MiB)
MANIFEST_CHUNKS = 2048  # about 190 KB of chunk hashes in the sealed start message
DELIVERY_PROHIBITED = {"read", "reproduce", "transfer", "odrl:read", "odrl:reproduce", "odrl:transfer"}


@dataclass
class Part:
    """One object of a delivery: its name (a relative POSIX path), its bytes as a stream of blocks,
    whether masking rules were applied, and a check to run once the blocks were read, given their
    SHA-256 (a source changed since registration fails it: the bytes are hashed once, as they go)."""

    name: str
    blocks: Iterator[bytes]
    masked: bool
    check: Callable[[str], None]
    estimate: int = 0  # about how many bytes (the source's size): what the chunk size is chosen by


def payload(resources, product, agreement_id: str) -> tuple[list[Part], bool, list[str]]:
    """The objects to deliver: a file or table as one (a table with masking rules as CSV with the
    rules applied, pseudonymised for this agreement; a table without bytes of its own, such as an
    SQLite table, as CSV), a folder as one a file (named by its path in the folder), and several
    resources as the objects of each, under a folder per resource. A referenced source that changed
    since registration is refused, never sent (each part's check)."""
    pins = product.resources
    rules = [f"{m['column']}:{m['rule']}" for pin in pins for m in resources.get(pin.resource_id).masking]
    parts: list[Part] = []
    for i, pin in enumerate(pins):
        r = resources.get(pin.resource_id)
        prefix = "" if len(pins) == 1 else f"{i + 1:02d}-{_safe(r.title or r.id)}/"
        parts += [Part(prefix + p.name, p.blocks, p.masked, p.check, p.estimate)
                  for p in resource_parts(resources, r, pin.version, agreement_id)]
    return parts, any(p.masked for p in parts), rules


def resource_parts(resources, r, version: int, agreement_id: str) -> list[Part]:
    """The objects of one resource version: a folder's files, or the resource itself."""
    v = resources.version(r.id, version)
    if r.kind != "folder":
        blocks, masked, check = resource_stream(resources, r, version, agreement_id)
        return [Part(_name(r, v, masked), blocks, masked, check, v.size or 0)]
    return [Part(f["path"], *_folder_file(resources, r, version, f), f.get("size") or 0) for f in v.files]


def chunk_size(parts: list[Part], *, direct: bool) -> int:
    """The chunk size of a delivery's manifest: 1 MiB on either path (``direct`` or through the
    broker: the relay's lane carries a chunk in frames of 192 KiB, the older chunk messages in parts
    of RELAY_CHUNK; fewer, larger chunks are fewer hashes and records), doubled while the manifest
    would list more than MANIFEST_CHUNKS chunks (it travels in the start message, under the broker's
    message size limit), up to CHUNK_MAX (a chunk goes in one frame of the channel)."""
    size = DIRECT_CHUNK
    total = sum(max(p.estimate, 0) for p in parts)
    while size < CHUNK_MAX and -(-total // size) > MANIFEST_CHUNKS:
        size *= 2
    return size


def _folder_file(resources, r, version: int, entry: dict) -> tuple[Iterator[bytes], bool, Callable[[str], None]]:
    def blocks() -> Iterator[bytes]:
        with resources.open_bytes(r.id, version, file=entry["path"]) as f:
            yield from iter(lambda: f.read(BLOCK), b"")

    def check(sha256: str) -> None:
        if sha256 != entry["sha256"]:
            raise DeliveryError(LocalText("delivery.reason.source_changed", r.id, version))

    return blocks(), False, check


def _name(r, v, masked: bool) -> str:
    """A file's or table's object name: its file name (CSV when made from rows), else its title."""
    source = PurePosixPath(str(v.source or "").replace("\\", "/")).name if r.kind in ("file", "table") else ""
    name = _safe(source or r.title or r.id)
    if masked or r.kind == "sqlite_table":
        name = (name.rsplit(".", 1)[0] if "." in name.strip(".") else name) + ".csv"
    return name


def _safe(text: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80].strip(".")
    return safe or "data"


def resource_stream(resources, r, version: int, agreement_id: str):
    """``(blocks, masked, check)`` for one resource version (``check`` takes the SHA-256 of the
    blocks as read). A column the sensitive-data scan flagged must have a masking decision (a rule,
    or ``keep`` to deliver it in clear): else the delivery is refused and the provider is told what
    to decide."""
    _check_decided(resources, r, version)
    if r.masking or r.kind == "sqlite_table":
        src = resources.open_masked_rows(r.id, agreement_id=agreement_id, version=version)
        return csv_blocks(src), bool(r.masking), lambda sha256: None
    v = resources.version(r.id, version)
    stream = resources.open_bytes(r.id, version)

    def blocks() -> Iterator[bytes]:
        with stream as f:
            yield from iter(lambda: f.read(BLOCK), b"")

    def check(sha256: str) -> None:
        if sha256 != v.sha256:
            raise DeliveryError(LocalText("delivery.reason.source_changed", r.id, version))

    return blocks(), False, check


def _check_decided(resources, r, version: int) -> None:
    flagged = {f.get("column") for f in resources.version(r.id, version).sensitive if isinstance(f, dict)}
    undecided = sorted(c for c in flagged - {m["column"] for m in r.masking} if c)
    if undecided:
        raise DeliveryError(LocalText("delivery.reason.sensitive_undecided", r.id, ", ".join(undecided)))


def hosted_payload(resources, product) -> tuple[str, str, int, str] | None:
    """``(object id, name, size, SHA-256)`` when the payload is a vault object already: one hosted file
    or table delivered as its bytes (no masking rules). It is sent from that object as it is, not
    copied into a new one (the vault's authentication covers it; its hash is the registration's)."""
    pins = product.resources
    if len(pins) != 1:
        return None
    r = resources.get(pins[0].resource_id)
    if r.kind not in ("file", "table") or r.masking or r.mode != "hosted":
        return None
    v = resources.version(r.id, pins[0].version)
    if not v.vault_object or v.size is None:
        return None
    _check_decided(resources, r, pins[0].version)
    return v.vault_object, _name(r, v, False), v.size, v.sha256


def referenced_payload(resources, product, agreement_id: str) -> tuple[str, Part] | None:
    """``(source name, part)`` when the payload is one referenced file or table delivered as its bytes
    (no masking rules): it is not copied into the vault, only hashed (and checked against its
    registration) once, then sent from the source itself (:class:`SourceReaders`, each chunk checked
    against the manifest as it is read). The source name ``source:<resource id>:<version>`` stands
    where a payload's vault object id would."""
    pins = product.resources
    if len(pins) != 1:
        return None
    r = resources.get(pins[0].resource_id)
    if r.kind not in ("file", "table") or r.masking or r.mode != "referenced":
        return None
    (part,) = resource_parts(resources, r, pins[0].version, agreement_id)
    return f"{SOURCE}{r.id}:{pins[0].version}", part


class SourceReaders:
    """Chunks of payloads sent from their referenced source (:func:`referenced_payload`): each file
    open once (at most ``keep`` at a time; opening checks it is unchanged since registration), a
    chunk read at its place and checked against the manifest, so a source changed since it was
    hashed is never sent (DeliveryError ``source_changed``)."""

    def __init__(self, resources, keep: int = 8) -> None:
        self._resources, self._keep = resources, keep
        self._lock = threading.Lock()
        self._open: dict[str, object] = {}

    def read(self, source: str, where: mf.Layout, index: int) -> bytes:
        rid, _, version = source[len(SOURCE):].rpartition(":")
        with self._lock:
            f = self._open.pop(source, None)
            if f is None:
                f = self._resources.open_bytes(rid, int(version))
            self._open[source] = f
            while len(self._open) > self._keep:
                self._open.pop(next(iter(self._open))).close()  # type: ignore[attr-defined]
            fd = f.fileno()  # type: ignore[attr-defined]
            try:
                data = os.pread(fd, where.length(index), where.offset(index))
            except OSError:
                data = b""
        try:
            mf.check_chunk(where, index, data)
        except ChunkCorrupt:
            self.forget(source)
            raise DeliveryError(LocalText("delivery.reason.source_changed", rid, int(version))) from None
        return data

    def forget(self, source: str) -> None:
        with self._lock:
            f = self._open.pop(source, None)
        if f is not None:
            f.close()  # type: ignore[attr-defined]

    def close(self) -> None:
        with self._lock:
            files, self._open = list(self._open.values()), {}
        for f in files:
            f.close()  # type: ignore[attr-defined]


def chunk_hashes(pieces, chunk_size: int) -> tuple[list[str], int]:
    """The SHA-256 of each chunk of the pieces (a vault object's plaintext) and their size."""
    hashing = Hashing(chunk_size, whole=False)
    try:
        for piece in pieces:
            hashing.update(piece)
    finally:
        hashing.close()
    return hashing.hashes, hashing.size


class ChunkReader:
    """Reads one vault object forward, skipping ahead when asked for a later place. It takes the
    vault's plaintext pieces as they come: a chunk that is a whole piece (1 MiB chunks of a payload
    of one object) is passed on as it is, others are sliced out of them, nothing goes through a
    buffered stream."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._piece = memoryview(b"")  # what is left of the current piece, which starts at next_offset
        self._whole: bytes | None = None  # the current piece itself while none of it was taken
        self.next_offset = 0

    def read(self, offset: int, length: int) -> bytes:
        taken: list[memoryview] = []
        while length > 0:
            if not self._piece and not self._next():
                break
            skip = offset - self.next_offset
            if skip >= len(self._piece):
                self._advance(len(self._piece))
                continue
            if skip > 0:
                self._advance(skip)
            if self._whole is not None and length >= len(self._piece) and not taken:
                whole, n = self._whole, len(self._piece)
                self._advance(n)
                if n == length:
                    return whole
                taken.append(memoryview(whole))
            else:
                n = min(length, len(self._piece))
                taken.append(self._piece[:n])
                self._advance(n)
            offset += n
            length -= n
        return b"".join(taken)

    def _next(self) -> bool:
        piece = next(self._pieces, None)
        if piece is None:
            return False
        self._piece, self._whole = memoryview(piece), piece
        return True

    def _advance(self, n: int) -> None:
        self._piece = self._piece[n:]
        self._whole = None
        self.next_offset += n

    def close(self) -> None:
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()


class ChunkReaders:
    """Chunks of prepared payloads (a delivery's objects one after the other in one vault object).
    The vault decrypts an object front to back, so a reader is kept per object (at most ``keep``)
    and moves forward; asking for an earlier chunk opens it again."""

    def __init__(self, vault, keep: int = 16) -> None:
        self._vault, self._keep = vault, keep
        self._lock = threading.Lock()
        self._readers: dict[str, ChunkReader] = {}

    def read(self, object_id: str, where: mf.Layout, index: int) -> bytes:
        offset = where.offset(index)
        with self._lock:
            reader = self._readers.pop(object_id, None)
        if reader is None or reader.next_offset > offset:
            if reader is not None:
                reader.close()
            reader = ChunkReader(self._vault.open(object_id))
        try:
            data = reader.read(offset, where.length(index))
        except BaseException:
            reader.close()
            raise
        with self._lock:
            old = self._readers.pop(object_id, None)
            self._readers[object_id] = reader
            while len(self._readers) > self._keep:
                self._readers.pop(next(iter(self._readers))).close()
        if old is not None:
            old.close()
        return data

    def close(self) -> None:
        with self._lock:
            readers, self._readers = list(self._readers.values()), {}
        for reader in readers:
            reader.close()


class Hashing:
    """The SHA-256 of a stream of blocks, of the whole (``sha256``, with its ``size``) and, given a
    ``chunk_size``, of each chunk of that many bytes (``hashes``), computed on a thread of its own:
    hashlib lets go of the GIL on large buffers, so the hashing runs beside whoever reads the source
    and encrypts it into the vault (``python -m bench delivery``: SHA-256 was a third of preparing a
    payload). At most ``depth`` blocks wait; a block must not change once given. :meth:`close`
    (always) waits for the thread and makes the results final."""

    def __init__(self, chunk_size: int | None, *, depth: int = 8, also=None, whole: bool = True) -> None:
        self._chunk_size = chunk_size
        self._hash_whole = whole
        self._also = also  # another hash object fed the same blocks (the whole of several parts)
        self._queue: queue.Queue = queue.Queue(depth)
        self._whole, self._chunk, self._filled = hashlib.sha256(), hashlib.sha256(), 0
        self.hashes: list[str] = []
        self.size = 0
        self.sha256 = ""
        self._thread = threading.Thread(target=self._run, name="dsnode-hashing", daemon=True)
        self._thread.start()

    def update(self, block: bytes) -> None:
        self._queue.put(block)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
            if self._filled:
                self.hashes.append(self._chunk.hexdigest())
                self._filled = 0
            self.sha256 = self._whole.hexdigest()

    def _run(self) -> None:
        while (block := self._queue.get()) is not None:
            view = memoryview(block)
            if self._hash_whole:
                self._whole.update(view)
            if self._also is not None:
                self._also.update(view)
            self.size += len(view)
            while self._chunk_size is not None and view:
                take = min(len(view), self._chunk_size - self._filled)
                self._chunk.update(view[:take])
                self._filled += take
                view = view[take:]
                if self._filled == self._chunk_size:
                    self.hashes.append(self._chunk.hexdigest())
                    self._chunk, self._filled = hashlib.sha256(), 0


class Chunker:
    """Passes a stream of blocks on as they are, keeping the SHA-256 of each chunk of ``size`` bytes
    (``hashes``) and the size and SHA-256 of the whole (``length``, ``sha256``), hashed beside
    (:class:`Hashing`); the results are there once the blocks were all taken. Nothing is copied: the
    vault cuts the blocks its own way."""

    def __init__(self, blocks, size: int, also=None) -> None:
        self._blocks, self._size, self._also = blocks, size, also
        self.hashes: list[str] = []
        self.length = 0
        self.sha256 = ""

    def __iter__(self) -> Iterator[bytes]:
        hashing = Hashing(self._size, also=self._also)
        try:
            for block in self._blocks:
                if block:
                    hashing.update(block)
                    yield block
        finally:
            hashing.close()
        self.hashes, self.length, self.sha256 = hashing.hashes, hashing.size, hashing.sha256


class PartsChunker:
    """The chunks of several parts one after the other, each part cut on its own (no chunk spans
    two objects); keeps each part's manifest entry {name, size, sha256, chunks}, and the size and
    SHA-256 of all of them one after the other (``size``, ``sha256``: of one part, its own, so the
    bytes are hashed whole once; several parts feed one more hash on the same thread)."""

    def __init__(self, parts: list[Part], size: int) -> None:
        self._parts, self._size = parts, size
        self.objects: list[dict] = []
        self.size = 0
        self.sha256 = ""

    def __iter__(self) -> Iterator[bytes]:
        whole = hashlib.sha256() if len(self._parts) != 1 else None
        for part in self._parts:
            chunker = Chunker(part.blocks, self._size, also=whole)
            yield from chunker
            part.check(chunker.sha256)
            self.objects.append({"name": part.name, "size": chunker.length, "sha256": chunker.sha256,
                                 "chunks": chunker.hashes})
            self.size += chunker.length
            self.sha256 = chunker.sha256
        if whole is not None:
            self.sha256 = whole.hexdigest()


def csv_blocks(src) -> Iterator[bytes]:
    """The rows of ``src`` as UTF-8 CSV, a block every 2,000 rows (closed when done)."""
    with src:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(src.columns)
        for n, row in enumerate(src, 1):
            w.writerow(["" if v is None else v for v in row])
            if n % 2000 == 0:
                yield out.getvalue().encode("utf-8")
                out.seek(0)
                out.truncate()
        yield out.getvalue().encode("utf-8")


def permits_delivery(agreement: dict) -> bool:
    """Whether the agreed terms let the data itself go to the consumer (a compute-only offer does not)."""
    def actions(rules) -> set[str]:
        out = set()
        for rule in rules or []:
            a = rule.get("action") if isinstance(rule, dict) else None
            a = a.get("@id") if isinstance(a, dict) else a
            if isinstance(a, str):
                out.add(a)
        return out

    permitted, prohibited = actions(agreement.get("permission")), actions(agreement.get("prohibition"))
    if prohibited & DELIVERY_PROHIBITED:
        return False
    return bool(permitted - {COMPUTE_ONLY})


def expires(agreement: dict) -> str | None:
    """When the agreement ends, from an elapsedTime (a duration from its timestamp) or a dateTime limit."""
    ends = None
    for rule in agreement.get("permission") or []:
        for c in (rule.get("constraint") or []) if isinstance(rule, dict) else []:
            if not isinstance(c, dict) or c.get("operator") not in ("lteq", "lt"):
                continue
            value = c.get("rightOperand")
            value = value.get("@value") if isinstance(value, dict) else value
            if c.get("leftOperand") == "elapsedTime" and isinstance(value, str) and value.startswith("P") \
                    and value.endswith("D") and value[1:-1].isdigit():
                try:
                    start = datetime.fromisoformat(str(agreement.get("timestamp")).replace("Z", "+00:00"))
                except ValueError:
                    continue
                end = rfc3339(start + timedelta(days=int(value[1:-1])))
            elif c.get("leftOperand") == "dateTime" and isinstance(value, str):
                end = value
            else:
                continue
            ends = end if ends is None or end < ends else ends
    return ends


def b64(data: bytes | memoryview) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError("chunk data is not text")
    return base64.b64decode(text, validate=True)

