"""SyncService: the node's spaces, store-and-forward messaging with them, and the space catalog cache.

Save before you send: ``send`` and ``publish`` sign the message and write it to the outbox inside
the caller's open write transaction; a link thread publishes it after the commit. Received messages
run their handlers inside one write transaction together with their dedup row: at-least-once on the
wire, exactly-once in effect.

Threads: one supervisor (``dsnode-sync``) that starts and stops links as spaces are added, changed or
left; per connected space a link thread (``dsnode-sync-<space>``: the MQTT connection, publishing,
receiving) and a committer (``dsnode-sync-<space>-commit``: marks acknowledged rows sent, so the link
never waits for a commit). ``stop()`` joins them all.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, fields, replace
from datetime import datetime, timezone

from appliance.clock import Clock, rfc3339
from appliance.crypto.keys import SigningKey
from appliance.domain.sync import (
    CONNECTING_STATUSES,
    LANE_PREFIX,
    STATUSES,
    Action,
    CatalogEntry,
    LinkState,
    MessageDropped,
    Peer,
    SpaceConfig,
    SpaceStatus,
    SyncTimers,
    expand_ranges,
    may_publish,
    may_publish_as,
    to_ranges,
    valid_space_id,
)
from appliance.errors import (
    InvalidSpaceId,
    LocalText,
    MessageTooLarge,
    SpaceExists,
    SpaceNotFound,
    SyncError,
    TopicNotAllowed,
)
from appliance.events import EventBus
from appliance.services.evidence import EvidenceLog
from appliance.services.identity import KeyRing
from appliance.services.sync import catalog_cache, inbox, outbox, presence, quarantine
from appliance.services.sync.codec import SIGNED_EXTRA, checked_did, encode_unsigned, seal
from appliance.services.sync.drops import Counters, RateLimitedLog
from appliance.services.sync.intake import Intake, arrivals_of
from appliance.services.sync.link import Link
from appliance.services.sync.receiver import Handler, Handlers, Receiver
from appliance.storage.database import Database

log = logging.getLogger("appliance.services.sync")

RESEND_TYPE = "dsnode.sync.resend"
GONE_TYPE = "dsnode.sync.gone"
ACK_TYPE = "dsnode.sync.ack"
_COLUMNS = ("space_id", "name", "operator_did", "broker_host", "broker_port", "tls_ca_pem", "username", "password",
            "status", "credential", "tls_cert_pem", "tls_key_pem")
_CHANGEABLE = frozenset(_COLUMNS) - {"space_id"}
SHOWN_CACHE = 10_000  # catalog entries whose approval is remembered as verified
_OUTBOX_BATCH = "sync.outbox"  # db.batch key of the rows a write queues
SEQ_BLOCK = 16  # seqs a retained topic reserves at a time (see _take_seq)
SEQ_BLOCKS = 10_000  # retained topics whose reserved seqs are remembered


def _row_to_config(row) -> SpaceConfig:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["credential"] = json.loads(values["credential"]) if values["credential"] else None
    return SpaceConfig(**values)


def _load_config(conn, space_id: str) -> SpaceConfig:
    row = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM sync_space WHERE space_id = ?", (space_id,)).fetchone()
    if row is None:
        raise SpaceNotFound(space_id)
    return _row_to_config(row)


def _load_all(conn) -> list[SpaceConfig]:
    return [_row_to_config(r) for r in conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM sync_space ORDER BY space_id")]


class SyncService:
    def __init__(self, db: Database, keyring: KeyRing, evidence: EvidenceLog, clock: Clock, bus: EventBus, *,
                 timers: SyncTimers | None = None, rand: random.Random | None = None) -> None:
        self.db = db
        self._keyring = keyring
        self._evidence = evidence
        self.clock = clock
        self.bus = bus
        self.timers = timers or SyncTimers()
        self.rand = rand or random.Random()
        self.node_did: str = keyring.node_did
        self.keys = presence.KeyDirectory()
        self.counters = Counters()
        self.ratelog = RateLimitedLog()
        self._handlers = Handlers()
        self._lane: Callable[[str, bytes], None] | None = None  # who takes binary lane frames (on_lane)
        self._sender_filter: Callable[[str, str], bool] = lambda space_id, sender: True
        self._catalog_filter: Callable[[str, str, str, dict], bool] = lambda space_id, provider, dataset, entry: True
        self._shown_cache: dict[tuple[str, str, str, str], bool] = {}
        # Remembered on the store's writer thread while no write was rolled back (db.rollbacks):
        self._rights: dict[str, tuple[str, str, int]] = {}  # space -> (status, username, rollbacks)
        self._seq_blocks: dict[tuple[str, str], list[int]] = {}  # (space, topic) -> [next, last, rollbacks]
        self.receiver = Receiver(handlers=self._handlers, keys=self.keys, db=db,
                                 sender_allowed=lambda space_id, sender: self._sender_filter(space_id, sender),
                                 peer_online=self._peer_online, ratelog=self.ratelog)
        self._lock = threading.Lock()
        self._links: dict[str, Link] = {}
        self._supervisor: threading.Thread | None = None
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        def retired(conn, key) -> None:
            self.flush_outbox(conn)
            outbox.sign_unsigned(conn, key)

        keyring.on_retire(retired)
        self.on(RESEND_TYPE, self._on_resend)
        self.on(GONE_TYPE, self._on_gone)
        self.on(ACK_TYPE, self._on_ack)

    # --- spaces --------------------------------------------------------------------------------

    def add_space(self, conn, config: SpaceConfig) -> None:
        """Add a space inside the caller's write transaction (sync connects to it after the commit)."""
        _check_config(config)
        if conn.execute("SELECT 1 FROM sync_space WHERE space_id = ?", (config.space_id,)).fetchone():
            raise SpaceExists(config.space_id)
        ts = rfc3339(self.clock.now())
        values = asdict(config)
        values["credential"] = json.dumps(config.credential, ensure_ascii=False) if config.credential else None
        self._rights.pop(config.space_id, None)
        conn.execute(
            f"INSERT INTO sync_space ({', '.join(_COLUMNS)}, added, updated) "
            f"VALUES ({', '.join('?' * len(_COLUMNS))}, ?, ?)",
            (*(values[c] for c in _COLUMNS), ts, ts),
        )
        self._evidence.append(conn, action=Action.SPACE_ADDED, subject=config.space_id, payload={
            "name": config.name, "operator": config.operator_did, "status": config.status,
            "broker": f"{config.broker_host}:{config.broker_port}", "tls": config.tls_ca_pem is not None,
        })
        self._reconcile_soon()

    def update_space(self, conn, space_id: str, **changes) -> None:
        """Change a space's settings inside the caller's transaction (e.g. status, credential, account)."""
        unknown = sorted(set(changes) - _CHANGEABLE)
        if unknown:
            raise TypeError(f"update_space() got unknown setting(s) {', '.join(unknown)}")
        current = _load_config(conn, space_id)
        updated = replace(current, **changes)
        _check_config(updated)
        if updated == current:
            return
        values = asdict(updated)
        values["credential"] = json.dumps(updated.credential, ensure_ascii=False) if updated.credential else None
        names = sorted(changes)
        self._rights.pop(space_id, None)
        conn.execute(
            f"UPDATE sync_space SET {', '.join(f'{n} = ?' for n in names)}, updated = ? WHERE space_id = ?",
            (*(values[n] for n in names), rfc3339(self.clock.now()), space_id),
        )
        self._evidence.append(conn, action=Action.SPACE_UPDATED, subject=space_id,
                              payload={"changed": names, "status": updated.status})
        self._reconcile_soon()

    def spaces(self) -> list[SpaceConfig]:
        return self.db.read(_load_all)

    def space(self, space_id: str) -> SpaceConfig:
        return self.db.read(lambda c: _load_config(c, space_id))

    # --- sending (inside the caller's transaction) ---------------------------------------------

    def send(self, conn, space_id: str, *, to: str, type: str, body: object, topic: str | None = None) -> str:  # noqa: A002
        """A direct message, sealed to ``to``, on ``inbox/<to>`` (or ``topic``, e.g. a join topic).

        Returns the message id. Raises TopicNotAllowed if this node may not publish there.
        """
        config = _load_config(conn, space_id)
        checked_did(to)
        topic = topic or f"inbox/{to}"
        self._check_topic(config, topic)
        return self._send(conn, space_id, to=to, type=type, body=body, topic=topic)

    def _send(self, conn, space_id: str, *, to: str, type: str, body: object, topic: str,  # noqa: A002
              control: bool = False) -> str:
        msg_id = secrets.token_hex(16)
        sealed = seal(body, to=self.keys.current(to), from_did=self.node_did, msg_id=msg_id, space=space_id, type=type)
        return self._enqueue(conn, space_id, topic=topic, type=type, body=sealed, to=to, retained=False, msg_id=msg_id,
                             control=control)

    def send_control(self, conn, space_id: str, *, to: str, type: str, body: object) -> str:  # noqa: A002
        """A sync control message (resend, gone, ack): direct, sealed, unsequenced (seq 0), so losing
        one never opens a gap that would itself ask for a resend."""
        config = _load_config(conn, space_id)
        topic = f"inbox/{to}"
        self._check_topic(config, topic)
        return self._send(conn, space_id, to=to, type=type, body=body, topic=topic, control=True)

    def publish(self, conn, space_id: str, *, topic: str, type: str, body: object | None,  # noqa: A002
                retained: bool = False) -> str:
        """A signed message on ``topic`` (relative to ``tds/v1/<space>/``); returns its id.

        ``body=None`` with ``retained=True`` clears the retained message (e.g. delists an entry).
        """
        if body is None and not retained:
            raise ValueError("body None only clears a retained topic (retained=True)")
        self._check_publish(conn, space_id, topic)
        msg_id = secrets.token_hex(16)
        if body is None:
            self._queue(conn, outbox.row(space_id=space_id, topic=topic, msg_id=None, type=None, stream=topic,
                                         seq=None, retained=True, payload=b"", created=rfc3339(self.clock.now())))
            self._notify(space_id)
            return msg_id
        return self._enqueue(conn, space_id, topic=topic, type=type, body=body, to=None, retained=retained,
                             msg_id=msg_id)

    def _check_publish(self, conn, space_id: str, topic: str) -> None:
        """May this node publish to ``topic`` in ``space_id``? Else SpaceNotFound or TopicNotAllowed.

        The space's status and account are remembered between writes (``add_space`` and
        ``update_space`` forget them; so does any rollback, which may have taken a change back)."""
        epoch = self._epoch()
        rights: tuple[str, str, int | None] | None = self._rights.get(space_id)
        if rights is None or rights[2] != epoch:  # epoch None (no write of ours): never a hit
            row = conn.execute("SELECT status, username FROM sync_space WHERE space_id = ?", (space_id,)).fetchone()
            if row is None:
                raise SpaceNotFound(space_id)
            rights = (row[0], row[1], epoch)
            if epoch is not None:
                self._rights[space_id] = (row[0], row[1], epoch)
        if not may_publish_as(rights[0], rights[1], self.node_did, topic):
            raise TopicNotAllowed(topic, space_id, rights[0])

    def _epoch(self) -> int | None:
        """``db.rollbacks`` on the writer thread; None elsewhere (a foreign connection: remember nothing)."""
        try:
            return self.db.rollbacks
        except RuntimeError:
            return None

    def _take_seq(self, conn, space_id: str, topic: str, retained: bool) -> int:
        """The next seq of ``topic``'s stream. A retained topic reserves ``SEQ_BLOCK`` seqs at a time
        (one store statement per block, not per message): a block cut short by a rollback or a
        restart leaves a gap, which retained topics may have (receivers keep the highest seq or
        latest ts of each; only direct and broadcast streams are checked for gaps, and those take
        their seqs one by one)."""
        epoch = self._epoch()
        if not retained or epoch is None:
            return outbox.take_seq(conn, space_id, topic)
        key = (space_id, topic)
        block = self._seq_blocks.get(key)
        if block is None or block[2] != epoch or block[0] > block[1]:
            first = outbox.allocate(conn, space_id, topic, SEQ_BLOCK)
            if len(self._seq_blocks) >= SEQ_BLOCKS:
                self._seq_blocks.clear()
            block = self._seq_blocks[key] = [first, first + SEQ_BLOCK - 1, epoch]
        seq = block[0]
        block[0] += 1
        return seq

    def _check_topic(self, config: SpaceConfig, topic: str) -> None:
        if not may_publish(config, self.node_did, topic):
            raise TopicNotAllowed(topic, config.space_id, config.status)

    def _enqueue(self, conn, space_id: str, *, topic: str, type: str, body: object, to: str | None,  # noqa: A002
                 retained: bool, msg_id: str, control: bool = False, seq: int | None = None) -> str:
        if seq is None:
            seq = 0 if control else self._take_seq(conn, space_id, topic, retained)
        ts = rfc3339(self.clock.now())
        payload, sign_at = encode_unsigned(from_did=self.node_did, type=type, space=space_id, to=to, seq=seq, ts=ts,
                                           body=body, msg_id=msg_id)
        size = len(payload) + SIGNED_EXTRA + len(self._keyring.signing_key().did)  # as published
        if size > self.timers.max_message:
            raise MessageTooLarge(size, self.timers.max_message)
        self._queue(conn, outbox.row(space_id=space_id, topic=topic, msg_id=msg_id, type=type, stream=topic, seq=seq,
                                     retained=retained, payload=payload, created=ts, sign_at=sign_at))
        self._notify(space_id)
        return msg_id

    def _outbox_batch(self, conn) -> list | None:
        """The outbox rows the current write queued, inserted together when its function returns
        (``db.batch``); None on a connection that is not the store's writer (rows go in at once)."""
        try:
            return self.db.batch(_OUTBOX_BATCH, lambda rows: outbox.enqueue(conn, rows))
        except RuntimeError:
            return None

    def _queue(self, conn, row: tuple) -> None:
        batch = self._outbox_batch(conn)
        if batch is None:
            outbox.enqueue(conn, [row])
        else:
            batch.append(row)

    def flush_outbox(self, conn) -> None:
        """Insert the rows this write queued so far (before reading or changing the outbox in it)."""
        batch = self._outbox_batch(conn)
        if batch:
            outbox.enqueue(conn, batch)
            batch.clear()

    def _notify(self, space_id: str, *, rescan: bool = False) -> None:
        """Wake the space's link once the caller's transaction has committed (once per transaction),
        so it reads committed rows and never waits for the writer."""
        try:
            self.db.after_commit(lambda: self._wake(space_id, rescan), key=("sync.outbox", space_id, rescan))
        except RuntimeError:  # not inside one of this database's writes
            self._wake(space_id, rescan)

    def _wake(self, space_id: str, rescan: bool) -> None:
        link = self._links.get(space_id)
        if link is not None:
            if rescan:
                link.request_rescan()
            else:
                link.notify_outbox()

    def queue_card(self, conn, space_id: str) -> bool:
        """Queue this node's card for ``space_id`` if it changed since last time; True if queued."""
        config = _load_config(conn, space_id)
        if config.status not in ("member", "operator"):
            return False
        body = presence.card_body(self.node_did, self._keyring.name, self._keyring.org,
                                  _key_records(conn), config.credential)
        digest = presence.card_hash(body)
        row = conn.execute("SELECT card_hash FROM sync_space WHERE space_id = ?", (space_id,)).fetchone()
        if row and row[0] == digest:
            return False
        self.publish(conn, space_id, topic=f"node/{self.node_did}/card", type=presence.CARD_TYPE, body=body,
                     retained=True)
        conn.execute("UPDATE sync_space SET card_hash = ? WHERE space_id = ?", (digest, space_id))
        return True

    # --- receiving -----------------------------------------------------------------------------

    def on(self, type: str, handler: Handler) -> None:  # noqa: A002
        """Run ``handler(conn, msg)`` for every message of ``type``, in the transaction that dedups it."""
        self._handlers.on(type, handler)

    def handled_types(self) -> list[str]:
        """The message types some handler takes (what a peer can make this node act on)."""
        return sorted(self._handlers.by_type)

    def on_topic(self, pattern: str, handler: Handler) -> None:
        """The same for messages on topics matching MQTT filter ``pattern`` (relative to the space)."""
        self._handlers.on_topic(pattern, handler)

    def on_lane(self, handler: Callable[[str, bytes], None]) -> None:
        """``handler(space_id, frame)`` takes every binary lane frame that arrives on this node's inbox
        (``LANE_PREFIX``), on the link's thread: it must only hand the frame on, quickly."""
        self._lane = handler

    def lane_frame(self, space_id: str, frame: bytes) -> None:
        handler = self._lane
        if handler is None:
            self.counters.add_dropped(space_id, "lane_unhandled")
            return
        try:
            handler(space_id, frame)
        except Exception as e:  # noqa: BLE001 - a lane bug must not take the link down; it is logged
            self.ratelog.error(f"lane:{space_id}", "space %s: the lane's handler failed (%s)", space_id,
                               type(e).__name__)

    def send_lane(self, space_id: str, to: str, frame: bytes) -> bool:
        """Publish one binary lane frame to ``to``'s inbox (any thread; no outbox row, QoS 1). False when
        the space has no connected link (the frame is not sent)."""
        if frame[:1] != LANE_PREFIX or len(frame) > self.timers.max_message:
            raise ValueError("not a lane frame, or larger than the broker takes")
        with self._lock:
            link = self._links.get(space_id)
        return link is not None and link.send_lane(to, frame)

    def set_sender_filter(self, fn: Callable[[str, str], bool]) -> None:
        """``fn(space_id, sender_did) -> bool``: messages from senders it refuses are dropped (from_revoked)."""
        self._sender_filter = fn

    def set_catalog_filter(self, fn: Callable[[str, str, str, dict], bool]) -> None:
        """``fn(space_id, provider, dataset_id, entry) -> bool``: which cached entries the catalog shows.

        A yes is remembered for the same entry message (``fn`` must depend only on its arguments,
        the space's operator aside: e.g. verify a signature), so revocation belongs in the sender filter."""
        self._catalog_filter = fn
        self._shown_cache.clear()

    def catalog(self, space_id: str, query: str | None = None) -> list[CatalogEntry]:
        """The space catalog as cached here (works offline); ``query`` words must all match."""
        entries = self.db.read(lambda c: catalog_cache.search(c, space_id, query))
        return [e for e in entries if self._shown(e)]

    def catalog_entries(self, space_id: str, dataset_id: str) -> list[CatalogEntry]:
        """The shown entries of ``dataset_id`` in the space catalog (one per provider listing it),
        newest first: ``catalog()`` narrowed to one dataset without reading the whole catalog."""
        entries = self.db.read(lambda c: catalog_cache.entries_of(c, space_id, dataset_id))
        return [e for e in entries if self._shown(e)]

    def _shown(self, e: CatalogEntry) -> bool:
        """Both filters; the catalog filter's yes (it verifies the operator's listing approval, a
        signature) is remembered per entry message, so browsing and every contract request do not
        verify the same approval again. The sender filter (revocation) is asked every time."""
        if not self._sender_filter(e.space_id, e.provider):
            return False
        key = (e.space_id, e.provider, e.dataset_id, e.msg_id)  # a new entry comes in a new message
        if key in self._shown_cache:
            return True
        if not self._catalog_filter(e.space_id, e.provider, e.dataset_id, e.entry):
            return False
        if len(self._shown_cache) >= SHOWN_CACHE:
            self._shown_cache.clear()
        self._shown_cache[key] = True
        return True

    def peers(self, space_id: str) -> list[Peer]:
        rows = self.db.read(lambda c: c.execute(
            "SELECT did, name, org, presence, presence_ts, card FROM sync_peer WHERE space_id = ? ORDER BY name, did",
            (space_id,)).fetchall())
        return [Peer(space_id, d, n, o, p, pt, json.loads(card) if card else None) for d, n, o, p, pt, card in rows]

    def _on_resend(self, conn, msg) -> None:
        stream, seqs = _resend_body(msg.body, "missing")
        if stream != f"inbox/{msg.sender}" and not (stream.startswith("operator/")
                                                    and not stream.startswith("operator/join/")):
            raise SyncError(LocalText("sync.reason.resend_not_addressed", msg.sender, stream))
        self.flush_outbox(conn)
        again, gone = outbox.requeue(conn, msg.space_id, stream, seqs)
        if again:
            self._notify(msg.space_id, rescan=True)
        if gone:
            self.send_control(conn, msg.space_id, to=msg.sender, type=GONE_TYPE,
                              body={"stream": stream, "seqs": to_ranges(gone)})

    def _on_ack(self, conn, msg) -> None:
        body = msg.body
        if (not isinstance(body, dict) or body.get("stream") != f"inbox/{msg.sender}"
                or not isinstance(body.get("through"), int) or isinstance(body.get("through"), bool)):
            raise SyncError(LocalText("sync.reason.bad_confirmation", msg.sender))
        outbox.confirm(conn, msg.space_id, body["stream"], body["through"])

    def _peer_online(self, conn, space_id: str, did: str) -> None:
        """A peer came online: what we sent it without confirmation goes again (it may have had no
        session at the broker then, e.g. before its first connection as a member)."""
        if did == self.node_did:
            return
        link = self._links.get(space_id)
        if link is not None:
            link.requeue_unconfirmed(f"inbox/{did}")  # once what is in flight now is acknowledged
        else:
            self.flush_outbox(conn)
            outbox.requeue_unconfirmed(conn, space_id, f"inbox/{did}")

    def _on_gone(self, conn, msg) -> None:
        stream, seqs = _resend_body(msg.body, "seqs")
        loaded = inbox.load_track(conn, msg.space_id, msg.sender, stream)
        if loaded is None:
            return
        track, attempts = loaded
        for seq in seqs:
            track.add(seq)
        inbox.save_track(conn, msg.space_id, msg.sender, stream, track, attempts if track.above else 0)

    def dropped(self, space_id: str, reason: str, detail: str, topic: str, sender: str | None) -> None:
        self.counters.add_dropped(space_id, reason)
        self.ratelog.warning(f"drop:{space_id}:{reason}", "space %s: dropped a message on %s (%s): %s",
                             space_id, topic[:160], reason, detail[:300])
        self.emit(MessageDropped(space_id, reason, topic[:160], sender))

    def emit(self, event: object) -> None:
        self.bus.emit(event)

    def signing_key(self) -> SigningKey:
        return self._keyring.signing_key()

    # --- running -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._supervisor is not None

    def start(self) -> None:
        """Connect to every space this node is in (or joining, or operating), in the background."""
        with self._lock:
            if self._supervisor is not None:
                return
            self._stopping.clear()
            self.db.read(self.keys.load)
            self.db.write(catalog_cache.index_missing)
            self._supervisor = threading.Thread(target=self._supervise, name="dsnode-sync", daemon=True)
            self._supervisor.start()
        self._reconcile()

    def stop(self) -> None:
        """Say goodbye (offline status) in every space, disconnect, and join every sync thread."""
        with self._lock:
            supervisor, self._supervisor = self._supervisor, None
        if supervisor is None:
            return
        self._stopping.set()
        self._wakeup.set()
        supervisor.join()
        with self._lock:
            links = list(self._links.values())
            self._links.clear()
        for link in links:
            link.stop(join=False)
        for link in links:
            link.join()

    def _reconcile_soon(self) -> None:
        self._wakeup.set()

    def _supervise(self) -> None:
        next_housekeeping = time.monotonic()
        while not self._stopping.is_set():
            try:
                self._reconcile()
                if time.monotonic() >= next_housekeeping:
                    self._housekeep()
                    next_housekeeping = time.monotonic() + self.timers.housekeeping
            except Exception:
                log.exception("space sync supervisor failed; retrying")
            self._wakeup.wait(self.timers.reconcile_poll)
            self._wakeup.clear()

    def _reconcile(self) -> None:
        """Start, restart or stop links to match the spaces in the store (read after any pending commit)."""
        with self._lock:
            if self._stopping.is_set() or self._supervisor is None:
                return
            wanted = {c.space_id: c for c in self.db.write(_load_all) if c.status in CONNECTING_STATUSES}
            stale = [link for sid, link in self._links.items()
                     if sid not in wanted or link.config != wanted[sid] or not link.alive]
            for link in stale:
                link.stop(join=False)
            for link in stale:
                link.join()
                del self._links[link.space_id]
            for sid, config in wanted.items():
                if sid not in self._links:
                    link = Link(self, config)
                    self._links[sid] = link
                    link.start()

    def _housekeep(self) -> None:
        now = self.clock.now().timestamp()

        def ts(seconds_ago: float) -> str:
            return rfc3339(datetime.fromtimestamp(now - seconds_ago, timezone.utc))

        outbox_before, inbox_before = ts(self.timers.outbox_retention), ts(self.timers.dedup_window)
        self.db.write(lambda c: (outbox.purge(c, outbox_before), inbox.purge(c, inbox_before)))

    def run_once(self, *, timeout: float = 30.0, quiet: float = 1.0) -> list[SpaceStatus]:
        """Connect, send what is queued, take what arrives until ``quiet`` s pass without traffic, stop.

        Returns the status of every space as it was just before disconnecting.
        """
        self.start()
        try:
            self.wait_settled(timeout=timeout, quiet=quiet)
            return self.status()
        finally:
            self.stop()

    def wait_settled(self, *, timeout: float, quiet: float = 0.5, space_ids: list[str] | None = None) -> bool:
        """Wait until the given (default: all connecting) spaces are connected and idle; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                links = [l for sid, l in self._links.items() if space_ids is None or sid in space_ids]
            if links and all(link.settled(quiet) for link in links) and self._queued_total(space_ids) == 0:
                return True
            time.sleep(0.05)
        return False

    def _queued_total(self, space_ids: list[str] | None) -> int:
        rows = self.db.read(lambda c: c.execute(
            "SELECT space_id, COUNT(*) FROM sync_outbox WHERE sent IS NULL GROUP BY space_id").fetchall())
        return sum(n for sid, n in rows if space_ids is None or sid in space_ids)

    # --- what adapters show -------------------------------------------------------------------

    # --- messages that hit a bug -----------------------------------------------------------------

    def quarantined(self, space_id: str) -> list[quarantine.Quarantined]:
        """The space's received messages kept in quarantine, oldest first."""
        return self.db.read(lambda c: (_load_config(c, space_id), quarantine.rows(c, space_id))[1])

    def retry_quarantined(self, space_id: str) -> tuple[int, int]:
        """Check and apply the space's quarantined messages again, now (a running link also does
        this by itself when it starts under a new version). Returns (released, still kept)."""
        config, rows = self.db.read(lambda c: (_load_config(c, space_id), quarantine.rows(c, space_id)))
        intake = Intake(self, config)
        released = 0
        arrivals = arrivals_of(rows)
        for i in range(0, len(arrivals), 500):
            taken = intake.take(arrivals[i : i + 500])
            intake.report(taken)
            released += taken.released
        return released, len(rows) - released

    def discard_quarantined(self, space_id: str) -> int:
        """Forget the space's quarantined messages (they will never be applied)."""
        return self.db.write(lambda c: (_load_config(c, space_id), quarantine.discard(c, space_id))[1])

    def status(self, space_id: str | None = None) -> list[SpaceStatus]:
        def read(c):
            configs = [_load_config(c, space_id)] if space_id else _load_all(c)
            queued = dict(c.execute("SELECT space_id, COUNT(*) FROM sync_outbox WHERE sent IS NULL GROUP BY space_id"))
            synced = dict(c.execute("SELECT space_id, last_sync FROM sync_space"))
            return configs, queued, synced, quarantine.counts(c)

        configs, queued, synced, kept = self.db.read(read)
        out = []
        for cfg in configs:
            link = self._links.get(cfg.space_id)
            state = link.state if link else LinkState.STOPPED
            sent, received, dropped = self.counters.snapshot(cfg.space_id)
            out.append(SpaceStatus(
                space_id=cfg.space_id, name=cfg.name, membership=cfg.status, state=state.value,
                connected=state is LinkState.CONNECTED, broker=f"{cfg.broker_host}:{cfg.broker_port}",
                queued=queued.get(cfg.space_id, 0), last_sync=(link.last_sync if link and link.last_sync else None)
                or synced.get(cfg.space_id), last_error=link.last_error if link else None,
                sent=sent, received=received, dropped=dropped, quarantined=kept.get(cfg.space_id, 0),
            ))
        return out


def _key_records(conn):
    from appliance.crypto.key_chain import KeyRecord

    rows = conn.execute("SELECT seq, did, public_key, created, retired, statement FROM identity_key ORDER BY seq")
    return [KeyRecord(s, d, bytes(p), c, r, json.loads(st) if st else None) for s, d, p, c, r, st in rows]


def _resend_body(body: object, field: str) -> tuple[str, list[int]]:
    if not isinstance(body, dict) or not isinstance(body.get("stream"), str):
        raise SyncError(LocalText("sync.reason.resend_no_stream"))
    try:
        return body["stream"], expand_ranges(body.get(field))
    except ValueError as e:
        raise SyncError(LocalText("sync.reason.resend_bad_ranges", str(e))) from None


def _check_config(config: SpaceConfig) -> None:
    if not valid_space_id(config.space_id):
        raise InvalidSpaceId(config.space_id)
    if config.status not in STATUSES:
        raise SyncError(LocalText("sync.reason.unknown_status", repr(config.status)))
    checked_did(config.operator_did)
    if not isinstance(config.broker_port, int) or not 0 < config.broker_port < 65536:
        raise SyncError(LocalText("sync.reason.bad_port", repr(config.broker_port)))
    if not config.broker_host:
        raise SyncError(LocalText("sync.reason.no_broker_host"))
    for f in fields(SpaceConfig):
        if f.name in ("tls_ca_pem", "tls_cert_pem", "tls_key_pem", "credential"):
            continue
        if getattr(config, f.name) is None:
            raise SyncError(LocalText("sync.reason.setting_missing", f.name))
