"""The provider's side of what is delivered: the payload of a product (masked as its resources'
rules say), cut into chunks with their hashes, read back chunk by chunk; and what the agreed terms
allow (delivery at all, and until when)."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import threading
import zipfile
from datetime import datetime, timedelta
from collections.abc import Callable, Iterator

from appliance.clock import rfc3339
from appliance.errors import DeliveryError, LocalText
from appliance.services.delivery import manifest as mf

COMPUTE_ONLY = "urn:dsnode:odrl:aggregateOnly"
DELIVERY_PROHIBITED = {"read", "reproduce", "transfer", "odrl:read", "odrl:reproduce", "odrl:transfer"}


def payload(resources, product, agreement_id: str) -> tuple[Iterator[bytes], bool, list[str], Callable[[], None]]:
    """The bytes to deliver, as a stream, and a check to run once they were read: one resource as
    it is (a table with masking rules as CSV with the rules applied, pseudonymised for this
    agreement; a table without bytes of its own, such as an SQLite table, as CSV), several as a
    ZIP of them. A referenced source that changed since registration is refused, never sent."""
    pins = product.resources
    rules = [f"{m['column']}:{m['rule']}" for pin in pins for m in resources.get(pin.resource_id).masking]
    if len(pins) == 1:
        r = resources.get(pins[0].resource_id)
        blocks, masked, check = resource_stream(resources, r, pins[0].version, agreement_id)
        return blocks, masked, rules, check
    buf = io.BytesIO()
    masked_any = False
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i, pin in enumerate(pins):
            r = resources.get(pin.resource_id)
            stream, masked, check = resource_stream(resources, r, pin.version, agreement_id)
            data = b"".join(stream)
            check()
            masked_any |= masked
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in (r.title or r.id))[:80]
            z.writestr(f"{i + 1:02d}-{safe}{'.csv' if masked or r.kind == 'sqlite_table' else ''}", data)
    return iter([buf.getvalue()]), masked_any, rules, lambda: None

def resource_stream(resources, r, version: int, agreement_id: str):
    """``(blocks, masked, check)`` for one resource version. A column the sensitive-data scan
    flagged must have a masking decision (a rule, or ``keep`` to deliver it in clear): else the
    delivery is refused and the provider is told what to decide."""
    flagged = {f.get("column") for f in resources.version(r.id, version).sensitive if isinstance(f, dict)}
    undecided = sorted(c for c in flagged - {m["column"] for m in r.masking} if c)
    if undecided:
        raise DeliveryError(LocalText("delivery.reason.sensitive_undecided", r.id, ", ".join(undecided)))
    if r.masking or r.kind == "sqlite_table":
        src = resources.open_masked_rows(r.id, agreement_id=agreement_id, version=version)
        return csv_blocks(src), bool(r.masking), lambda: None
    v = resources.version(r.id, version)
    h = hashlib.sha256()
    stream = resources.open_bytes(r.id, version)

    def blocks() -> Iterator[bytes]:
        with stream as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
                yield block

    def check() -> None:
        if h.hexdigest() != v.sha256:
            raise DeliveryError(LocalText("delivery.reason.source_changed", r.id, version))

    return blocks(), False, check


class ChunkReader:
    """Reads chunks of one vault object in order, skipping forward when asked for a later one."""

    def __init__(self, stream, chunk_size: int) -> None:
        self._stream, self._size = stream, chunk_size
        self.next_index = 0

    def read(self, index: int, length: int) -> bytes:
        skip = (index - self.next_index) * self._size
        while skip > 0:
            got = self._stream.read(min(skip, 1 << 20))
            if not got:
                break
            skip -= len(got)
        data = self._stream.read(length)
        self.next_index = index + 1
        return data

    def close(self) -> None:
        self._stream.close()


class ChunkReaders:
    """Chunks of prepared payloads. The vault decrypts an object front to back, so a reader is kept
    per object (at most ``keep``) and moves forward; asking for an earlier chunk opens it again."""

    def __init__(self, vault, keep: int = 16) -> None:
        self._vault, self._keep = vault, keep
        self._lock = threading.Lock()
        self._readers: dict[str, ChunkReader] = {}

    def read(self, object_id: str, m: dict, index: int) -> bytes:
        with self._lock:
            reader = self._readers.pop(object_id, None)
        if reader is None or reader.next_index > index:
            if reader is not None:
                reader.close()
            reader = ChunkReader(self._vault.open_stream(object_id), m["chunkSize"])
        try:
            data = reader.read(index, mf.chunk_length(m, index))
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


class Chunker:
    """Re-cuts a stream of blocks into chunks of ``size`` bytes, keeping each chunk's SHA-256."""

    def __init__(self, blocks, size: int) -> None:
        self._blocks, self._size = blocks, size
        self.hashes: list[str] = []

    def __iter__(self) -> Iterator[bytes]:
        pending = bytearray()
        for block in self._blocks:
            pending += block
            while len(pending) >= self._size:
                chunk = bytes(pending[:self._size])
                del pending[:self._size]
                self.hashes.append(mf.digest(chunk))
                yield chunk
        if pending:
            chunk = bytes(pending)
            self.hashes.append(mf.digest(chunk))
            yield chunk


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


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError("chunk data is not text")
    return base64.b64decode(text, validate=True)

