"""The consumer's data plane (``TransferService.receiver``): fetching the chunks a manifest lists,
keeping each verified one sealed in staging, and finishing a delivery into the vault.

- pull, direct: the consumer connects to the provider's data channel and asks for the chunks it
  lacks, a batch at a time;
- push, direct: the provider connected to this node's channel (``accept_push``); the consumer asks
  for what it lacks over that connection the same way, so resume works the same in both;
- relay: the chunks travel through the broker, a window at a time: binary frames on this node's
  inbox (lane.py), or sealed inbox messages from a provider of an earlier version.
Chunks that arrive in order are also written into the vault as they come (staging.InOrder): once
every chunk is there those objects are closed, or else each goes from staging into the vault on its
own; each is checked against its SHA-256 in the manifest (one that does not match is fetched
again alone), the objects are listed as received data, and the consumer signs a receipt over all
of them.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from appliance.domain.transfer import Event, Role, State
from appliance.errors import ApplianceError, ChunkCorrupt, DeliveryError, LocalText
from appliance.net import channel as ch
from appliance.services.delivery import manifest as mf
from appliance.services.delivery import messages as msgs
from appliance.services.delivery.payload import RELAY_CHUNK, unb64
from appliance.services.delivery.records import COLS, Actions, Transfer, transfer_row

log = logging.getLogger(__name__)

BATCH_BYTES = 8 << 20  # chunks asked for at once over the channel (recorded together)
AHEAD = 2  # batches asked for before the first of them is in: the provider sends while this side keeps
RELAY_PART = RELAY_CHUNK  # the data of one relayed message: a larger chunk goes in parts
RELAY_WINDOW = 16  # relay messages' worth of chunks asked for and not yet here, per transfer (about 3.7 MB)
ASSEMBLING = 8  # chunks arriving in parts kept at once, per node
RELAY_STALL = 10.0  # seconds without a relayed chunk before the consumer asks again
CONNECT_TRIES = 3  # direct connection attempts before the consumer asks for the relay
PUSH_WAIT = 15.0  # seconds a pushing provider's connection waits for its start message to arrive here
PUSH_GRACE = 30.0  # seconds a pushed transfer waits for the provider without a chunk before the relay
RELAY_ASK = "dsnode.transfer.relay"


class Receiver:
    # ``service`` is the TransferService (service.py) whose part this is: its store, keys, sync, worker
    def __init__(self, service: Any, staging) -> None:
        self.s = service  # the TransferService (service.py) whose consumer side this is
        self.staging = staging
        self._relay_lock = threading.Lock()
        self._asked: dict[str, set[int]] = {}  # transfer -> chunks asked for through the broker, not yet here
        self._layouts: dict[str, mf.Layout] = {}  # transfer -> its manifest's layout (a relayed chunk needs it)
        self._parts: dict[tuple[str, int], tuple[bytearray, set[int]]] = {}  # a chunk arriving in parts
        self._pushing: set[str] = set()  # transfers a provider is pushing now

    # --- relay ----------------------------------------------------------------------------------

    def on_chunk(self, conn, msg) -> None:
        """A chunk relayed through the broker (inside the sync inbox transaction). The window slides:
        once half of the chunks asked for arrived, as many more are asked for, so the broker always
        has some on their way (asking only when a whole window was in left it idle). A chunk larger
        than one message comes in parts (``offset``), put together here before it is checked."""
        s = self.s
        body = msg.body if isinstance(msg.body, dict) else {}
        t = s._mine(conn, msg.sender, {"consumerPid": body.get("transfer")})
        if t is None or t.role != "consumer" or t.state != State.STARTED.value:
            return
        where = self._layout(conn, t.id)
        index = body.get("index")
        try:
            if not isinstance(index, int) or isinstance(index, bool):
                raise ValueError("no chunk index")
            if conn.execute("SELECT 1 FROM transfer_chunk WHERE transfer_id = ? AND idx = ?",
                            (t.id, index)).fetchone():
                return  # a copy of one already kept
            data = unb64(body.get("data"))
            if "offset" in body:
                whole = self._assemble(t.id, where, index, body["offset"], data)
                if whole is None:
                    return  # more parts to come
                data = whole
            mf.check_chunk(where, index, data)
        except (ChunkCorrupt, ValueError) as e:
            log.warning("transfer %s: a relayed chunk was refused: %s", t.id,
                        e.message("en") if isinstance(e, ApplianceError) else e)
            return
        self.staging.keep(t.id, index, data, where.chunk_size)
        self.record_chunks(conn, t.id, [(index, len(data))])
        done = conn.execute("SELECT chunks_done FROM transfer WHERE id = ?", (t.id,)).fetchone()[0]
        total, size = where.total, where.manifest["size"]
        s.db.after_commit(lambda: s._progress(t.id, done, total, min(done * where.chunk_size, size), size))
        if done >= total:
            s.db.after_commit(lambda: s._jobs.put(("finish", t.id)))
            return
        more = self._refill(conn, t.id, where, index)
        if more:
            s.sync.send(conn, t.space_id, to=t.peer, type=RELAY_ASK, body={"transfer": t.peer_pid, "chunks": more})

    def _layout(self, conn, transfer_id: str) -> mf.Layout:
        """The layout of a started transfer's manifest (it does not change), read once."""
        with self._relay_lock:
            where = self._layouts.get(transfer_id)
        if where is None:
            where = mf.Layout(self.s._manifest(conn, transfer_id)[0])
            with self._relay_lock:
                while len(self._layouts) >= 16:
                    self._layouts.pop(next(iter(self._layouts)))
                self._layouts[transfer_id] = where
        return where

    def _assemble(self, transfer_id: str, where: mf.Layout, index: int, offset: object, data: bytes) -> bytes | None:
        """Part ``offset`` of chunk ``index``: the whole chunk once its last part is here, else None."""
        length = where.length(index) if 0 <= index < where.total else 0
        if not isinstance(offset, int) or isinstance(offset, bool) or offset % RELAY_PART or \
                not 0 <= offset < length or offset + len(data) > length:
            raise ValueError("a part outside its chunk")
        key = (transfer_id, index)
        with self._relay_lock:
            got = self._parts.pop(key, None)
            buf, offsets = got if got is not None else (bytearray(length), set())
            buf[offset:offset + len(data)] = data
            offsets.add(offset)
            if len(offsets) == -(-length // RELAY_PART):
                return bytes(buf)
            while len(self._parts) >= ASSEMBLING:  # junk, or parts of chunks asked for long ago
                self._parts.pop(next(iter(self._parts)))
            self._parts[key] = (buf, offsets)
        return None

    @staticmethod
    def window(where: mf.Layout) -> int:
        """Chunks asked for through the broker at once: RELAY_WINDOW messages' worth, at least two."""
        return max(2, RELAY_WINDOW * RELAY_PART // where.chunk_size)

    def _refill(self, conn, transfer_id: str, where: mf.Layout, arrived: int) -> builtins.list[int]:
        """Chunk ``arrived`` is here: the chunks to ask for now (none while enough are on their way)."""
        window = self.window(where)
        with self._relay_lock:
            asked = self._asked.setdefault(transfer_id, set())
            asked.discard(arrived)
            if len(asked) > window // 2:
                return []
        have = {r[0] for r in conn.execute("SELECT idx FROM transfer_chunk WHERE transfer_id = ?", (transfer_id,))}
        with self._relay_lock:
            room = window - len(asked)
            more = [i for i in range(where.total) if i not in have and i not in asked][:room]
            asked.update(more)
        return more

    def relay(self, t: Transfer, where: mf.Layout, missing: builtins.list[int]) -> None:
        """Fetch through the broker: ask for the first window, then watch. Each window that arrives
        asks for the next (``on_chunk``); if nothing arrives for RELAY_STALL seconds (a provider
        that restarted, messages dropped on the way), ask again for what is missing."""
        s = self.s
        self.ask_relay(t, missing[:self.window(where)])
        done = s.get(t.id).chunks_done
        while not s._stop.wait(RELAY_STALL):
            now = s.get(t.id)
            if now.state != State.STARTED.value:
                return
            if now.chunks_done == done:
                missing = self.missing(t, where)
                if not missing:
                    s._jobs.put(("finish", t.id))
                    return
                self.ask_relay(t, missing[:self.window(where)])
            done = now.chunks_done

    def ask_relay(self, t: Transfer, missing: builtins.list[int]) -> None:
        """Ask for the chunks ``missing`` (a window: at the start, and again after a stall)."""
        with self._relay_lock:
            self._asked[t.id] = set(missing[:RELAY_WINDOW])

        def write(conn) -> None:
            conn.execute("UPDATE transfer SET path = 'relay' WHERE id = ?", (t.id,))
            body = {"transfer": t.peer_pid, "chunks": missing[:RELAY_WINDOW]}
            body.update(self.s.lane.offer(t.id, missing[:RELAY_WINDOW]))  # chunks as lane frames
            self.s.sync.send(conn, t.space_id, to=t.peer, type=RELAY_ASK, body=body)
        log.info("transfer %s: asking for %d chunk(s) through the broker", t.id, len(missing))
        self.s.db.write(write)

    # --- direct ---------------------------------------------------------------------------------

    def fetch(self, transfer_id: str) -> None:
        """The fetching thread of one transfer: pull from the provider's channel (three tries, then
        the relay), or through the relay. A pushed transfer waits for the provider to connect."""
        s = self.s
        t = s.get(transfer_id)
        where = mf.Layout(s.db.read(lambda c: s._manifest(c, t.id))[0])
        missing = self.missing(t, where)
        if not missing:
            s._jobs.put(("finish", t.id))
            return
        if t.path is None or not t.path.startswith("direct:"):
            self.relay(t, where, missing)
            return
        if t.mode == "push":  # the provider connects to this node (accept_push), or tells it to use the relay
            if self._await_push(t, where):
                self.relay(t, where, self.missing(t, where))
            return
        _, host, port = t.path.split(":", 2)
        for attempt in range(CONNECT_TRIES):
            if s._stop.is_set():
                return
            try:
                channel = ch.connect(host, int(port), s._keyring.signing_key(), expect_did=None, timeout=10)
            except ApplianceError as e:
                log.info("transfer %s: direct connection failed (%s), try %d", t.id, e.message("en"), attempt + 1)
                s._stop.wait(0.5 * (attempt + 1))
                continue
            try:
                if channel.peer_did not in (t.peer, s.sync.keys.current(t.peer)):
                    log.warning("transfer %s: the data channel is not the provider's", t.id)
                    return
                if self.pull(channel, t, where, missing):
                    s._jobs.put(("finish", t.id))
                    return
                missing = self.missing(t, where)
            except ApplianceError as e:
                log.info("transfer %s: direct transfer interrupted: %s", t.id, e.message("en"))
                missing = self.missing(t, where)
            finally:
                channel.close()
        if not s._stop.is_set():
            self.relay(t, where, missing)

    def _await_push(self, t: Transfer, where: mf.Layout) -> bool:
        """Wait while the provider pushes: True when the relay should take over (the provider said so,
        or nothing came for PUSH_GRACE seconds), False when the transfer moved on or is whole."""
        s = self.s
        last, idle = -1, 0.0
        while not s._stop.wait(1.0):
            now = s.get(t.id)
            if now.state != State.STARTED.value or not self.missing(t, where):
                return False
            if now.path == "relay":
                return True
            if now.chunks_done != last or t.id in self._pushing:
                last, idle = now.chunks_done, 0.0
                continue
            idle += 1.0
            if idle >= PUSH_GRACE:
                log.info("transfer %s: the provider has not pushed for %d s; fetching through the broker", t.id,
                         int(PUSH_GRACE))
                return True
        return False

    def accept_push(self, channel: ch.Channel, transfer_id: object) -> None:
        """A provider connected to this node's channel to push transfer ``transfer_id`` (ours): once
        its start is here, ask it for the missing chunks over this connection; say when all are in."""
        s = self.s
        t = None
        deadline = time.monotonic() + PUSH_WAIT
        while not s._stop.is_set():
            t = self._pushed(transfer_id, channel.peer_did)
            if t is None or t.state != State.REQUESTED.value or time.monotonic() > deadline:
                break
            s._stop.wait(0.1)  # the provider's start message is on its way through the broker
        if t is None or t.state != State.STARTED.value:
            channel.send_json({"error": "unknown_transfer" if t is None else "not_started"})
            return
        where = mf.Layout(s.db.read(lambda c: s._manifest(c, t.id))[0])
        self._pushing.add(t.id)
        try:
            missing = self.missing(t, where)
            if missing and not self.pull(channel, t, where, missing):
                return
        finally:
            self._pushing.discard(t.id)
        channel.send_json({"have": "all"})
        s._jobs.put(("finish", t.id))

    def _pushed(self, transfer_id: object, peer_did: str) -> Transfer | None:
        """Our pushed transfer ``transfer_id``, when ``peer_did`` is its provider (or its current key)."""
        if not isinstance(transfer_id, str):
            return None
        r = self.s.db.read(lambda c: c.execute(f"SELECT {COLS} FROM transfer WHERE id = ? AND role = 'consumer' "
                                               "AND mode = 'push'", (transfer_id,)).fetchone())
        t = transfer_row(r) if r else None
        return t if t is not None and peer_did in (t.peer, self.s.sync.keys.current(t.peer)) else None

    def missing(self, t: Transfer, where: mf.Layout) -> builtins.list[int]:
        have = self.s.db.read(lambda c: {r[0] for r in c.execute(
            "SELECT idx FROM transfer_chunk WHERE transfer_id = ?", (t.id,))})
        return [i for i in range(where.total) if i not in have]

    def pull(self, channel: ch.Channel, t: Transfer, where: mf.Layout, missing: builtins.list[int]) -> bool:
        """Ask for the missing chunks in batches of about BATCH_BYTES, AHEAD of them asked for at a
        time so that the provider reads and sends the next while this side checks and keeps the last;
        keep each verified one (recorded once its batch is in). True when none is missing."""
        s = self.s
        total, size = where.total, where.manifest["size"]
        per_batch = max(1, BATCH_BYTES // where.chunk_size)
        fd = self.staging.open(t.id)
        try:
            while missing and not s._stop.is_set():
                todo, done = list(missing), total - len(missing)
                asked: deque[builtins.list[int]] = deque()
                while (todo or asked) and not s._stop.is_set():
                    if State(s.get(t.id).state) is not State.STARTED:
                        return False
                    while todo and len(asked) < AHEAD:
                        asked.append(todo[:per_batch])
                        del todo[:per_batch]
                        channel.send_json({"fetch": t.peer_pid, "chunks": asked[-1]})
                    done = min(total, done + self._take_batch(channel, t, where, asked.popleft(), fd))
                    s._progress(t.id, done, total, min(done * where.chunk_size, size), size)
                left = self.missing(t, where)
                if len(left) == len(missing):  # the provider ended every batch early: nothing came
                    return False
                missing = left
        finally:
            os.close(fd)
            if self.staging.in_order is not None:
                self.staging.in_order.end(t.id)
        return not missing

    def _take_batch(self, channel: ch.Channel, t: Transfer, where: mf.Layout, batch: builtins.list[int],
                    fd: int) -> int:
        """Receive one batch asked for: each chunk checked and kept, all recorded together. How many."""
        kept: builtins.list[tuple[int, int]] = []
        try:
            while len(kept) < len(batch):
                kind, payload = channel.recv(timeout=60)
                if kind == ch.FRAME_JSON:
                    answer = json.loads(payload)
                    if "error" in answer:
                        raise DeliveryError(LocalText("delivery.reason.provider_refused", answer["error"]))
                    return len(kept)  # the provider ended this batch early (what is missing is asked again)
                index = int.from_bytes(payload[:4], "big")
                data = memoryview(payload)[4:]
                mf.check_chunk(where, index, data)  # ChunkCorrupt: the connection ends, the rest is asked again
                self.staging.keep(t.id, index, data, where.chunk_size, fd)
                if self.staging.in_order is not None:
                    self.staging.in_order.feed(t.id, where, index, data)
                kept.append((index, len(data)))
        finally:
            if kept:
                self.s.db.write(lambda c: self.record_chunks(c, t.id, kept), durable=False)
        channel.recv_json(timeout=60)  # the provider's end of the batch
        return len(kept)

    @staticmethod
    def record_chunks(conn, transfer_id: str, chunks: builtins.list[tuple[int, int]]) -> None:
        for index, size in chunks:
            if conn.execute("INSERT OR IGNORE INTO transfer_chunk (transfer_id, idx) VALUES (?, ?)",
                            (transfer_id, index)).rowcount:
                conn.execute("UPDATE transfer SET chunks_done = chunks_done + 1, bytes_done = bytes_done + ? "
                             "WHERE id = ?", (size, transfer_id))

    # --- finishing ------------------------------------------------------------------------------

    def finish(self, transfer_id: str) -> None:
        """All chunks are here: each object into the vault and checked, the receipt sent."""
        s = self.s
        t = s.get(transfer_id)
        if t.state != State.STARTED.value or t.role != "consumer":
            return
        m, sig = s.db.read(lambda c: s._manifest(c, t.id))
        where = mf.Layout(m)
        if self.missing(t, where):
            return
        streamed = self.staging.in_order.take(t.id) if self.staging.in_order is not None else None
        stored, bad, sha = self._streamed(where, streamed) if streamed else self._from_staging(t, where)
        if bad or sha != m["sha256"]:
            for obj in stored:
                s.vault.discard(obj)
            self._refetch(t, where, bad or range(len(where.objects)))
            return
        now = s._now()
        receipt = mf.build_receipt(m, sig, consumer_did=s.did, received=now, sha256=sha)
        rsig = mf.sign(s._keyring.signing_key(), receipt)
        s.db.write(lambda conn: self._received(conn, t, where, stored, receipt, rsig, now))
        self.staging.remove(t.id)

    def _streamed(self, where: mf.Layout, streamed: tuple[builtins.list, str]) -> tuple[builtins.list, builtins.list,
                                                                                       str]:
        """The objects written while the chunks arrived (staging.InOrder), checked as _from_staging does."""
        stored, sha = streamed
        bad = [k for k, (o, obj) in enumerate(zip(where.objects, stored, strict=True))
               if obj.sha256 != o["sha256"] or obj.size != o["size"]]
        return stored, bad, sha

    def _from_staging(self, t: Transfer, where: mf.Layout) -> tuple[builtins.list, builtins.list, str]:
        """Each object read back from staging into the vault: the objects, those that do not match
        their manifest entry (or could not be written), and the SHA-256 of all of them."""
        single = len(where.objects) == 1  # then the whole's SHA-256 is its object's, which the vault computes
        whole = hashlib.sha256()
        stored, bad = [], []
        for k, o in enumerate(where.objects):
            try:
                chunks = self.staging.chunks(t.id, where, where.chunks_of(k))
                obj = self.s.vault.put(chunks if single else _hashing(chunks, whole), expected_size=o["size"],
                                       name="received")
            except ApplianceError:
                bad.append(k)
                continue
            stored.append(obj)
            if obj.sha256 != o["sha256"] or obj.size != o["size"]:
                bad.append(k)
        return stored, bad, stored[0].sha256 if single and stored else whole.hexdigest()

    def _refetch(self, t: Transfer, where: mf.Layout, objects) -> None:
        """Forget the chunks of the objects that did not match their manifest entry, and fetch them again."""
        chunks = [i for k in objects for i in where.chunks_of(k)]

        def write(conn) -> None:
            conn.executemany("DELETE FROM transfer_chunk WHERE transfer_id = ? AND idx = ?",
                             [(t.id, i) for i in chunks])
            conn.execute("UPDATE transfer SET chunks_done = (SELECT COUNT(*) FROM transfer_chunk WHERE transfer_id = ?)"
                         " WHERE id = ?", (t.id, t.id))

        self.s.db.write(write)
        log.warning("transfer %s: %d object(s) do not match the manifest; fetching them again", t.id, len(objects))
        self.s._jobs.put(("fetch", t.id))

    def _received(self, conn, t: Transfer, where: mf.Layout, stored, receipt: dict, rsig: dict, now: str) -> None:
        s = self.s
        m = where.manifest
        for k, obj in enumerate(stored):
            s.vault.record(conn, obj, now)
            conn.execute("INSERT INTO received_data (object_id, transfer_id, negotiation_id, agreement_id, provider, "
                         "dataset_id, resource_id, version, size, sha256, received, name, part) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (obj.id, t.id, t.negotiation_id, t.agreement_id, t.peer, t.dataset_id, m["resource"],
                          int(m["version"]), obj.size, obj.sha256, now, where.objects[k]["name"], k))
            s._evidence.append(conn, action=Actions.RECEIVED, subject=t.id,
                               payload={"object": obj.id, "name": where.objects[k]["name"], "sha256": obj.sha256,
                                        "size": obj.size, "provider": t.peer, "agreement": t.agreement_id})
        conn.execute("UPDATE transfer SET object_id = ?, receipt = ?, receipt_sig = ? WHERE id = ?",
                     (stored[0].id if stored else None, json.dumps(receipt), json.dumps(rsig), t.id))
        assert t.peer_pid is not None  # the provider's start named its pid
        s._move(conn, t.id, Event.COMPLETE, Role.CONSUMER, "sent",
                body=msgs.completion(t.id, t.peer_pid, receipt=receipt, signature=rsig))


def _hashing(chunks: Iterator[bytes], whole) -> Iterator[bytes]:
    for chunk in chunks:
        whole.update(chunk)
        yield chunk
