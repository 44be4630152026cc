"""The relay's lane: delivery chunks through the space's broker as binary MQTT payloads.

A relayed chunk used to be a whole space message (an outbox row and a durable commit on each side,
JCS, a signature, sealing, base64 twice). It needs integrity and confidentiality only: every
chunk's SHA-256 is in the provider-signed manifest and the consumer checks each one anyway. So:

- the consumer's relay ask (``dsnode.transfer.relay``, a signed message sealed to the provider)
  offers a lane: ``"lane": {"v": 1, "key": <32 random bytes, base64>}``, a key of this transfer
  kept in memory (a restarted consumer offers a new one, and frames under the old key are dropped);
- a provider that knows the lane answers each asked chunk with frames on the consumer's inbox topic
  (the topic the broker's rules already let every member publish to and only the consumer read):
  ``HEADER || AES-256-GCM(key, nonce, part, associated data = HEADER)``, a part being up to 192 KiB
  of a chunk (``part_size``: what fits under the broker's message limit), QoS 1, no outbox row; a
  provider that does not (an older version) ignores the offer and sends the old chunk messages,
  which the consumer still reads (``Receiver.on_chunk``);
- HEADER (45 bytes, big-endian): ``00 'DSL'``, version (1), the transfer's tag (the first 16 bytes of
  SHA-256("dsnode-lane" 00 consumer pid)), chunk index, offset of this part in the chunk, part
  length (u32 each), the 12-byte nonce. The leading NUL tells the link a frame from an envelope
  (a JSON object), so frames never reach the sync intake;
- the consumer checks, keeps and records what arrives, a batch of frames per (non-durable) write,
  and slides its window: once half of what it asked for is in, it asks for as much again over the
  same signed message. A frame lost, or dropped as junk (a bad header, an unknown transfer, a wrong
  key, an index already kept, a wrong size), is asked for again by the window or the watchdog.

Junk is counted (``Lane.counts``) and logged at most every ten seconds per reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import queue
import secrets
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from appliance.domain.sync import LANE_PREFIX
from appliance.domain.transfer import State
from appliance.errors import ApplianceError, ChunkCorrupt
from appliance.services.delivery import manifest as mf
from appliance.services.delivery.consumer import RELAY_ASK, Receiver

log = logging.getLogger(__name__)

MAGIC = LANE_PREFIX + b"DSL"
VERSION = 1
HEADER = struct.Struct(">4sB16sIII12s")  # magic, version, transfer tag, index, offset, length, nonce
TAG = 16  # AES-GCM's tag after the sealed part
KEY = 32
WINDOW_BYTES = 16 << 20  # chunks asked for and not yet here, per transfer
QUEUED = 256  # frames waiting for the consumer's lane thread (more are dropped, and asked again)
BATCH = 64  # frames checked and kept per write transaction
OPEN = 32  # incoming transfers whose lane state is kept
ASSEMBLING = 8  # chunks arriving in parts kept at once, per transfer


def transfer_tag(consumer_pid: str) -> bytes:
    return hashlib.sha256(b"dsnode-lane\0" + consumer_pid.encode("utf-8")).digest()[:16]


def window(where: mf.Layout) -> int:
    """Chunks of one transfer asked for at once through the lane: WINDOW_BYTES' worth, at least two."""
    return max(2, WINDOW_BYTES // where.chunk_size)


def part_size(max_message: int) -> int:
    """The most of a chunk one frame carries under the broker's message limit that the node knows
    (``SyncTimers.max_message``), in 64 KiB steps: 192 KiB under 256 KiB."""
    room = max_message - HEADER.size - TAG
    return room // 65536 * 65536 if room >= 65536 else room


@dataclass(frozen=True)
class Frame:
    tag: bytes
    index: int
    offset: int
    length: int
    nonce: bytes
    header: bytes
    sealed: memoryview


def seal(aead: AESGCM, tag: bytes, index: int, offset: int, data: bytes | memoryview,
         nonce: bytes | None = None) -> bytes:
    """One frame: part ``data`` of chunk ``index`` at ``offset``, sealed under the transfer's key."""
    nonce = nonce if nonce is not None else os.urandom(12)
    header = HEADER.pack(MAGIC, VERSION, tag, index, offset, len(data), nonce)
    return header + aead.encrypt(nonce, bytes(data), header)


def parse(frame: bytes, max_size: int) -> Frame | str:
    """The frame's header and sealed part, or why it is junk (``header``, ``version``, ``size``)."""
    if len(frame) > max_size:
        return "size"
    if len(frame) < HEADER.size + TAG or frame[:4] != MAGIC:
        return "header"
    magic, version, tag, index, offset, length, nonce = HEADER.unpack_from(frame)
    if version != VERSION:
        return "version"
    if len(frame) != HEADER.size + length + TAG:
        return "size"
    return Frame(tag, index, offset, length, nonce, frame[:HEADER.size], memoryview(frame)[HEADER.size:])


def offered_key(offer: object) -> bytes | None:
    """The key of a consumer's lane offer, or None when the ask offers none (or not one this version reads)."""
    if not isinstance(offer, dict) or offer.get("v") != VERSION or not isinstance(offer.get("key"), str):
        return None
    try:
        key = base64.b64decode(offer["key"], validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == KEY else None


@dataclass(eq=False)
class _Incoming:
    """The consumer's lane state of one transfer."""

    transfer_id: str
    key: bytes
    aead: AESGCM
    asked: set[int] = field(default_factory=set)
    have: set[int] | None = None  # chunks kept (read from the store at the first frame)
    where: mf.Layout | None = None
    parts: dict[int, tuple[bytearray, dict[int, int]]] = field(default_factory=dict)  # chunk -> (bytes, spans)

    def offer(self) -> dict:
        return {"v": VERSION, "key": base64.b64encode(self.key).decode("ascii")}


class Lane:
    """Both sides of the lane of one TransferService (``service``): the provider's sending thread
    and the consumer's receiving thread (``dsnode-lane-out``, ``dsnode-lane-in``)."""

    def __init__(self, service, staging) -> None:
        self.s = service
        self.staging = staging
        self.counts: Counter[str] = Counter()  # sent, received, kept, dropped:<reason>
        self._lock = threading.Lock()
        self._open: dict[bytes, _Incoming] = {}
        self._in: queue.Queue = queue.Queue(QUEUED)
        self._out: queue.Queue = queue.Queue()
        self._layouts: dict[str, mf.Layout] = {}  # provider: transfer -> layout
        self._threads: list[threading.Thread] = []
        self._streaming: set[str] = set()  # transfers whose chunks were fed to staging.in_order

    def start(self) -> None:
        if not self._threads:
            self._threads = [threading.Thread(target=self._run_in, name="dsnode-lane-in", daemon=True),
                             threading.Thread(target=self._run_out, name="dsnode-lane-out", daemon=True)]
            for t in self._threads:
                t.start()

    def stop(self) -> None:
        if self._threads:
            self._in.put(None)
            self._out.put(None)
            for t in self._threads:
                t.join(timeout=30)
            self._threads = []
        self._end_streams()

    def _end_streams(self, transfer_id: str | None = None) -> None:
        """End the vault writes of chunks as they came (all, or one transfer's): a finished one is kept."""
        done = [transfer_id] if transfer_id is not None else list(self._streaming)
        for tid in done:
            self._streaming.discard(tid)
            if self.staging.in_order is not None:
                self.staging.in_order.end(tid)

    def _drop(self, reason: str, transfer: str = "-") -> None:
        self.counts["dropped:" + reason] += 1
        self.s.sync.ratelog.warning(f"lane:{reason}", "transfer %s: a lane frame was dropped (%s)", transfer, reason)

    # --- the consumer ---------------------------------------------------------------------------

    def offer(self, transfer_id: str, chunks: list[int]) -> dict:
        """The ``lane`` member of a relay ask for ``chunks`` (the transfer's lane opened, or its window reset)."""
        tag = transfer_tag(transfer_id)
        with self._lock:
            st = self._open.get(tag)
            if st is None:
                while len(self._open) >= OPEN:
                    self._open.pop(next(iter(self._open)))
                key = secrets.token_bytes(KEY)
                st = self._open[tag] = _Incoming(transfer_id, key, AESGCM(key))
            st.asked = set(chunks)
            st.have = None  # read again from the store at the next frame (what was recorded meanwhile)
        return {"lane": st.offer()}

    def frame(self, space_id: str, frame: bytes) -> None:
        """A frame arrived on this node's inbox (the link's thread): queued for the lane thread."""
        try:
            self._in.put_nowait(frame)
        except queue.Full:
            self._drop("full")

    def _run_in(self) -> None:
        while True:
            frame = self._in.get()
            if frame is None:
                return
            batch = [frame]
            while len(batch) < BATCH:
                try:
                    more = self._in.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._in.put(None)
                    break
                batch.append(more)
            try:
                self._take(batch)
            except Exception:  # noqa: BLE001 - the lane thread goes on; what was lost is asked again
                log.exception("the lane could not keep %d frame(s)", len(batch))

    def _take(self, batch: list[bytes]) -> None:
        kept: dict[_Incoming, list[tuple[int, int]]] = {}
        for frame in batch:
            got = self._open_frame(frame)
            if got is None:
                continue
            st, index, data = got
            assert st.where is not None
            self.staging.keep(st.transfer_id, index, data, st.where.chunk_size)
            if self.staging.in_order is not None:  # in order from the first: into the vault as they come
                self._streaming.add(st.transfer_id)
                self.staging.in_order.feed(st.transfer_id, st.where, index, data)
            if st.have is not None:  # (None: an ask just reset it; it is read again)
                st.have.add(index)
            kept.setdefault(st, []).append((index, len(data)))
        for st, chunks in kept.items():
            self.counts["kept"] += len(chunks)
            self.s.db.write(lambda conn, st=st, chunks=chunks: self._record(conn, st, chunks), durable=False)

    def _open_frame(self, frame: bytes) -> tuple[_Incoming, int, bytes] | None:
        """The whole checked chunk a frame completes (with its transfer), or None (junk, or more parts to come)."""
        f = parse(frame, self.s.sync.timers.max_message)
        if isinstance(f, str):
            self._drop(f)
            return None
        with self._lock:
            st = self._open.get(f.tag)
        if st is None:
            self._drop("transfer")
            return None
        try:
            data = st.aead.decrypt(f.nonce, f.sealed, f.header)
        except InvalidTag:
            with self._lock:
                st.asked.discard(f.index)  # if it was one of ours, the window asks for it again
            self._drop("key", st.transfer_id)
            return None
        self.counts["received"] += 1
        where = self._where(st)
        if not 0 <= f.index < where.total or st.have is None:
            self._drop("index", st.transfer_id)
            return None
        if f.index in st.have:
            self._drop("replayed", st.transfer_id)
            return None
        try:
            whole = self._assemble(st, where, f, data)
        except ValueError:
            self._drop("part", st.transfer_id)
            return None
        if whole is None:
            return None
        try:
            mf.check_chunk(where, f.index, whole)
        except ChunkCorrupt:
            with self._lock:
                st.asked.discard(f.index)
            self._drop("hash", st.transfer_id)
            return None
        return st, f.index, whole

    def _where(self, st: _Incoming) -> mf.Layout:
        if st.where is None or st.have is None:
            s = self.s
            st.where = s.db.read(lambda c: s.receiver._layout(c, st.transfer_id))
            st.have = s.db.read(lambda c: {r[0] for r in c.execute(
                "SELECT idx FROM transfer_chunk WHERE transfer_id = ?", (st.transfer_id,))})
        return st.where

    @staticmethod
    def _assemble(st: _Incoming, where: mf.Layout, f: Frame, data: bytes) -> bytes | None:
        """The whole chunk once its parts cover it from its start to its end, else None; ValueError
        for a part that does not fit in its chunk."""
        length = where.length(f.index)
        if f.offset == 0 and f.length == length:
            return data
        if f.offset + f.length > length:
            raise ValueError("a part outside its chunk")
        got = st.parts.pop(f.index, None)
        buf, spans = got if got is not None else (bytearray(length), {})
        buf[f.offset:f.offset + f.length] = data
        spans[f.offset] = f.length
        end = 0
        for at in sorted(spans):
            if at != end:
                break
            end += spans[at]
        if end == length:
            return bytes(buf)
        while len(st.parts) >= ASSEMBLING:
            st.parts.pop(next(iter(st.parts)))
        st.parts[f.index] = (buf, spans)
        return None

    def _record(self, conn, st: _Incoming, chunks: list[tuple[int, int]]) -> None:
        """Record kept chunks (in the lane thread's write) and slide the window, as ``Receiver.on_chunk``."""
        s = self.s
        t = s._get(conn, st.transfer_id)
        if t.role != "consumer" or t.state != State.STARTED.value:
            if st.have is not None:
                st.have.difference_update(i for i, _ in chunks)  # not recorded: asked for again on resuming
            s.db.after_commit(lambda: self._end_streams(t.id))
            return
        before = conn.execute("SELECT chunks_done FROM transfer WHERE id = ?", (t.id,)).fetchone()[0]
        Receiver.record_chunks(conn, t.id, chunks)
        where = st.where
        assert where is not None  # read at the chunks' frames
        done = conn.execute("SELECT chunks_done FROM transfer WHERE id = ?", (t.id,)).fetchone()[0]
        total, size = where.total, where.manifest["size"]
        for n in range(before + 1, done + 1):  # one progress event per chunk, as the message path
            s.db.after_commit(lambda n=n: s._progress(t.id, n, total, min(n * where.chunk_size, size), size))
        if done >= total:
            s.db.after_commit(lambda: self._finish(t.id))
            return
        more = self._refill(st, where, [i for i, _ in chunks])
        if more:
            s.sync.send(conn, t.space_id, to=t.peer, type=RELAY_ASK,
                        body={"transfer": t.peer_pid, "chunks": more, "lane": st.offer()})

    def _finish(self, transfer_id: str) -> None:
        self._end_streams(transfer_id)  # the objects written as the chunks came, if all came in order
        self.s._jobs.put(("finish", transfer_id))

    def _refill(self, st: _Incoming, where: mf.Layout, arrived: list[int]) -> list[int]:
        size = window(where)
        with self._lock:
            st.asked.difference_update(arrived)
            if len(st.asked) > size // 2:
                return []
            have = st.have
            if have is None:
                return []  # an ask just went; the next frame reads what is here again
            more = [i for i in range(where.total) if i not in have and i not in st.asked][:size - len(st.asked)]
            st.asked.update(more)
        return more

    # --- the provider ---------------------------------------------------------------------------

    def ask(self, conn, t, wanted: list[int], offer: object) -> bool:
        """A consumer's relay ask (in its inbox transaction): True when it offered a lane and the chunks
        go that way (after the commit, from the sending thread); False for the old message path."""
        key = offered_key(offer)
        if key is None or t.peer_pid is None or t.object_id is None:
            return False
        where = self._layouts.get(t.id)
        if where is None:
            where = mf.Layout(self.s._manifest(conn, t.id)[0])
            while len(self._layouts) >= OPEN:
                self._layouts.pop(next(iter(self._layouts)))
            self._layouts[t.id] = where
        batch = [i for i in wanted[:window(where)] if 0 <= i < where.total]
        job = (t.space_id, t.peer, transfer_tag(t.peer_pid), t.object_id, where, batch, key)
        self.s.db.after_commit(lambda: self._out.put(job))
        return True

    def _run_out(self) -> None:
        ciphers: dict[bytes, AESGCM] = {}
        while True:
            job = self._out.get()
            if job is None:
                return
            space_id, peer, tag, object_id, where, batch, key = job
            aead = ciphers.get(key)
            if aead is None:
                ciphers.clear()
                aead = ciphers[key] = AESGCM(key)
            try:
                self._send(space_id, peer, tag, object_id, where, batch, aead)
            except ApplianceError as e:  # the payload cannot be read (its source changed: the transfer was ended)
                log.info("the lane stopped sending %d chunk(s): %s", len(batch), e.message("en"))
            except Exception:  # noqa: BLE001 - this ask is lost (the consumer asks again); the lane goes on
                log.exception("the lane could not send %d chunk(s)", len(batch))

    def _send(self, space_id: str, peer: str, tag: bytes, object_id: str, where: mf.Layout, batch: list[int],
              aead: AESGCM) -> None:
        part = part_size(self.s.sync.timers.max_message)
        for i in batch:
            if self.s._stop.is_set():
                return
            data = memoryview(self.s._chunk(object_id, where, i))
            for at in range(0, max(len(data), 1), part):
                if not self.s.sync.send_lane(space_id, peer, seal(aead, tag, i, at, data[at:at + part])):
                    return  # not connected: the consumer's watchdog asks again
                self.counts["sent"] += 1
