"""One space's connection: a thread that drives an MQTT connection, publishes the outbox, applies
what arrives, and reconnects with backoff and jitter. The connection's life follows the table in
:mod:`appliance.domain.sync` (``step``).

All the network work of a space happens on this one thread (paho runs no thread of its own); the
store work goes to the database's owner thread in batches: one transaction to read a window of the
outbox, one to mark many acknowledged messages sent, one per batch of received messages.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections import deque

from appliance.clock import rfc3339
from appliance.domain.sync import (
    LANE_PREFIX,
    LinkAction,
    LinkEvent,
    LinkState,
    SpaceConfig,
    SyncStateChanged,
    absolute,
    backoff_delay,
    step,
    subscriptions,
)
from appliance.errors import ApplianceError
from appliance.net.mqtt import (
    BrokerParams,
    Connected,
    ConnectFailed,
    ConnectRefused,
    Disconnected,
    Incoming,
    MqttConnection,
    Published,
    Subscribed,
    Waker,
    Will,
)
from appliance.services.sync import inbox, outbox, presence, quarantine
from appliance.services.sync.codec import sign_and_encode, sign_stored
from appliance.services.sync.intake import Arrival, Intake, arrivals_of
from appliance.services.sync.committer import Committer
from appliance.services.sync.owner import SyncOwner

log = logging.getLogger("appliance.services.sync")

ACK_BATCH = 1000
INCOMING_BATCH = 500
PREFETCH = 1000  # outbox rows read per transaction
LANE_QUEUED = 128  # lane frames queued per link: a sender waits for room (its memory stays bounded)


class Link:
    """The connection of one space. ``start()``, ``stop()``; everything else runs on its thread."""

    def __init__(self, svc: SyncOwner, config: SpaceConfig) -> None:
        self.svc = svc
        self.config = config
        self.space_id = config.space_id
        self.timers = svc.timers
        self.state = LinkState.STOPPED
        self.last_error: str | None = None
        self.last_sync: str | None = None
        self.subscribed = False
        self._waker = Waker()
        self._stop = threading.Event()
        self._conn: MqttConnection | None = None
        self._inflight: dict[int, int] = {}  # MQTT message id -> outbox row id
        self._buffer: deque = deque()  # (outbox row, key to sign it) read, not yet handed to the connection
        self._acked: list[int] = []
        self._refused: list[tuple[int, str]] = []
        self._ack_due = 0.0
        self._cursor = 0  # highest outbox id read for this connection
        self._committer = Committer(svc, config.space_id)
        self._outbox_dirty = True
        self._rescan = False
        self._attempt = 0
        self._retry_at = 0.0
        self._connect_deadline = 0.0
        self._gap_due: float | None = None
        self._confirm: set[tuple[str, str]] = set()
        self._requeue: dict[str, int] = {}  # stream -> outbox id handed out when its recipient came online
        self._confirm_due: float | None = None
        self._gap_round = 0
        self._status_topic = f"node/{svc.node_did}/status"
        self._online_seq: int | None = None
        self._session_present = False
        self._goodbye: bytes | None = None
        self._last_activity = time.monotonic()
        self._intake = Intake(svc, config)
        self._lane_out: deque[tuple[str, bytes]] = deque()  # (topic, frame) queued by send_lane
        self._lane_inflight: set[int] = set()  # message ids of lane frames awaiting PUBACK
        self._lane_room = threading.Event()  # set when queued lane frames went to the connection
        self._inbox_topic = absolute(config.space_id, f"inbox/{svc.node_did}")
        self._thread = threading.Thread(target=self._run, name=f"dsnode-sync-{config.space_id}", daemon=True)

    # --- called from other threads -------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, join: bool = True) -> None:
        self._stop.set()
        self._waker.wake()
        if join:
            self.join()

    def join(self) -> None:
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()

    def notify_outbox(self) -> None:
        """New rows are in the outbox (called after the writer's transaction committed)."""
        if not self._outbox_dirty:
            self._outbox_dirty = True
            self._waker.wake()

    def request_rescan(self) -> None:
        """Rows already handed out were queued again (a resend request)."""
        self._rescan = True
        self.notify_outbox()

    def send_lane(self, to: str, frame: bytes) -> bool:
        """Queue one binary lane frame to ``to``'s inbox (any thread): QoS 1, no outbox row, so a frame
        lost with the connection is gone (the lane's receiver asks again). Waits while LANE_QUEUED
        frames are queued. False when not connected."""
        while len(self._lane_out) >= LANE_QUEUED and self.state is LinkState.CONNECTED and not self._stop.is_set():
            self._lane_room.clear()
            if len(self._lane_out) < LANE_QUEUED:  # room made before the clear
                break
            self._lane_room.wait(0.05)
        if self.state is not LinkState.CONNECTED:
            return False
        self._lane_out.append((absolute(self.space_id, f"inbox/{to}"), frame))
        self._waker.wake()
        return True

    def requeue_unconfirmed(self, stream: str) -> None:
        """``stream``'s recipient came online: send again what it has not confirmed, once every row
        handed to the broker so far is acknowledged (those may have reached the broker before the
        recipient had a session there)."""
        self._requeue[stream] = self._cursor
        self._waker.wake()

    def settled(self, quiet: float) -> bool:
        """Connected, subscribed, nothing queued or in flight, and nothing arrived for ``quiet`` s."""
        return (self.state is LinkState.CONNECTED and self.subscribed and not self._inflight and not self._buffer
                and not self._outbox_dirty and not self._acked and self._committer.idle()
                and self._gap_due is None and not self._confirm
                and not self._requeue
                and time.monotonic() - self._last_activity >= quiet)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # --- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        self._committer.start()
        try:
            self._retry_quarantined()
            self._fire(LinkEvent.START)
            while self.state is not LinkState.STOPPED:
                try:
                    if self.state is LinkState.OFFLINE:
                        self._wait_offline()
                    else:
                        self._turn()
                except Exception as e:  # a bug: say so, drop the connection, try again later
                    log.exception("sync link of space %s failed", self.space_id)
                    self.last_error = f"internal error ({type(e).__name__})"
                    self._drop_connection()
                    self._set_state(LinkState.OFFLINE if not self._stop.is_set() else LinkState.STOPPED)
                    self._schedule_retry()
        finally:
            self._drop_connection()
            self._committer.stop()
            self._waker.close()

    def _fire(self, event: LinkEvent) -> None:
        new, actions = step(self.state, event)
        self._set_state(new)
        for action in actions:
            self._ACTIONS[action](self)

    def _set_state(self, new: LinkState) -> None:
        if new is not self.state:
            self.state = new
            self.svc.emit(SyncStateChanged(self.space_id, new.value, self.last_error))

    def _wait_offline(self) -> None:
        left = self._retry_at - time.monotonic()
        if self._stop.is_set():
            self._fire(LinkEvent.STOP)
        elif left <= 0:
            self._fire(LinkEvent.RETRY)
        else:
            self._waker.wait(min(left, 1.0))

    def _turn(self) -> None:
        """One round on a live connection: wait for traffic, then act on what happened."""
        conn = self._live()
        events = conn.poll(self._timeout())
        incoming, lane, lost = [], [], None
        for ev in events:
            if isinstance(ev, Published):
                self._published(ev)
            elif isinstance(ev, Incoming):
                if ev.payload[:1] == LANE_PREFIX and ev.topic == self._inbox_topic and not ev.retain:
                    self.svc.lane_frame(self.space_id, ev.payload)  # hands it on; never raises
                    lane.append(ev)
                else:
                    incoming.append(ev)
            elif isinstance(ev, Connected):
                self._session_present = ev.session_present
                self._fire(LinkEvent.CONNECTED)
            elif isinstance(ev, ConnectRefused):
                lost = f"the broker refused the connection ({ev.reason})"
            elif isinstance(ev, Disconnected):
                lost = f"connection lost ({ev.reason})"
            elif isinstance(ev, Subscribed):
                self._subscribed(ev)
        if lane:  # acknowledged at once: a lane frame has no effect to commit first
            with conn.corked():
                for ev in lane:
                    conn.ack(ev.mid, ev.qos)
        for i in range(0, len(incoming), INCOMING_BATCH):
            self._receive(incoming[i : i + INCOMING_BATCH])
        if lost is None and self.state is not LinkState.STOPPED and not conn.socket_open:
            lost = "connection lost"
        if lost is not None and self.state in (LinkState.CONNECTING, LinkState.CONNECTED):
            self.last_error = lost
            self._flush_acks(force=True)
            self._fire(LinkEvent.CONNECT_FAILED if self.state is LinkState.CONNECTING else LinkEvent.CONNECTION_LOST)
            return
        if self._stop.is_set() and self.state in (LinkState.CONNECTING, LinkState.CONNECTED):
            self._fire(LinkEvent.STOP)
            return
        if self.state is LinkState.CONNECTING and time.monotonic() > self._connect_deadline:
            self.last_error = "the broker did not answer"
            self._fire(LinkEvent.CONNECT_FAILED)
            return
        if self.state is LinkState.CONNECTED:
            self._fill()
            self._fill_lane()
            self._flush_acks()
            if self._gap_due is not None and time.monotonic() >= self._gap_due:
                self._request_resends()
            if self._confirm_due is not None and time.monotonic() >= self._confirm_due:
                self._send_confirmations()
            if self._requeue:
                self._requeue_unconfirmed()

    def _timeout(self) -> float:
        now = time.monotonic()
        timeout = 1.0
        if self.state is LinkState.CONNECTING:
            timeout = min(timeout, max(0.0, self._connect_deadline - now))
        if self._acked or self._refused:
            timeout = min(timeout, max(0.0, self._ack_due - now))
        if self._gap_due is not None:
            timeout = min(timeout, max(0.0, self._gap_due - now))
        if self._confirm_due is not None:
            timeout = min(timeout, max(0.0, self._confirm_due - now))
        busy = self._outbox_dirty or self._buffer or self._rescan or self._lane_out
        if (busy and self.state is LinkState.CONNECTED
                and len(self._inflight) + len(self._lane_inflight) < self._window()) or self._stop.is_set():
            timeout = 0.0
        return timeout

    def _live(self) -> MqttConnection:
        """The connection, while the link has one (connecting, connected or saying goodbye)."""
        assert self._conn is not None, "the link has no connection"
        return self._conn

    def _window(self) -> int:
        return max(1, min(self.timers.window, self._conn.receive_maximum if self._conn else self.timers.window))

    # --- actions of the table ------------------------------------------------------------------

    def _connect(self) -> None:
        cfg, t = self.config, self.timers
        self.subscribed = False
        try:
            will = self._presence()
            params = BrokerParams(
                host=cfg.broker_host, port=cfg.broker_port, client_id=client_id(cfg, self.svc.node_did),
                username=cfg.username, password=cfg.password, tls_ca_pem=cfg.tls_ca_pem,
                tls_cert_pem=cfg.tls_cert_pem, tls_key_pem=cfg.tls_key_pem, keepalive=t.keepalive,
                session_expiry=t.session_expiry, connect_timeout=t.connect_timeout,
            )
            self._conn = MqttConnection(params, will=will, waker=self._waker)
            self._connect_deadline = time.monotonic() + t.connect_timeout
            self._conn.open()
        except ConnectFailed as e:
            self.last_error = str(e)
            self._drop_connection()
            self._fire(LinkEvent.CONNECT_FAILED)
        except ApplianceError as e:  # the store could not give us a sequence number
            self.last_error = e.message("en")
            self._drop_connection()
            self._fire(LinkEvent.CONNECT_FAILED)

    def _presence(self) -> Will | None:
        """Sign this connection's Will (offline); the online status (the seq before it) is signed
        once the broker says whether it still had our session."""
        self._online_seq = self._goodbye = None
        if self.config.status not in ("member", "operator"):
            return None
        svc, topic = self.svc, self._status_topic
        first = svc.db.write(lambda c: outbox.allocate(c, self.space_id, topic, 2))
        self._online_seq = first
        self._goodbye = self._status(presence.status_body("offline"), first + 1)
        return Will(absolute(self.space_id, topic), self._goodbye, qos=1, retain=True)

    def _status(self, body: dict, seq: int) -> bytes:
        svc = self.svc
        return sign_and_encode(svc.signing_key(), from_did=svc.node_did, type=presence.STATUS_TYPE,
                               space=self.space_id, to=None, seq=seq, ts=rfc3339(svc.clock.now()), body=body,
                               msg_id=secrets.token_hex(16))

    def _subscribe(self) -> None:
        conn = self._live()
        self._inflight.clear()
        self._buffer.clear()
        self._cursor = 0
        self._rescan = False
        self._outbox_dirty = True
        filters = [absolute(self.space_id, f) for f in subscriptions(self.config, self.svc.node_did)]
        if filters:
            conn.subscribe(filters)
        else:
            self.subscribed = True
        if self._online_seq is not None:
            body = presence.status_body("online", session_present=self._session_present)
            conn.publish(absolute(self.space_id, self._status_topic), self._status(body, self._online_seq),
                         qos=1, retain=True)
        if self.config.status in ("member", "operator"):
            self._queue_state(republish=not self._session_present)
        self._gap_due = time.monotonic() + self.timers.resend_after
        log.info("space %s: connected to %s:%d", self.space_id, self.config.broker_host, self.config.broker_port)

    def _queue_state(self, *, republish: bool) -> None:
        """Queue this node's card if it changed and, when the broker had no session for us
        (``republish``: a first connection, an expired session, or a broker that lost its state, and
        with it perhaps its retained messages), the latest retained message of each topic we own
        again, so members joining later still find our card, catalog entries and checkpoint."""
        if republish:
            self._flush_acks(force=True, wait=True)  # rows acknowledged before are marked sent first

        def work(c) -> int:
            self.svc.queue_card(c, self.space_id)
            if not republish:
                return 0
            self.svc.flush_outbox(c)  # the new card is then the latest of its topic
            return outbox.requeue_retained(c, self.space_id)

        again = self.svc.db.write(work)
        if again:
            log.info("space %s: the broker had no session for this node; publishing %d retained message(s) again",
                     self.space_id, again)

    def _reset_backoff(self) -> None:
        self._attempt = 0
        self.last_error = None

    def _backoff(self) -> None:
        self._drop_connection()
        self._schedule_retry()
        log.info("space %s: offline (%s); next attempt in %.1f s", self.space_id, self.last_error,
                 max(0.0, self._retry_at - time.monotonic()))

    def _schedule_retry(self) -> None:
        t = self.timers
        delay = backoff_delay(self._attempt, t.backoff_initial, t.backoff_max, self.svc.rand.random())
        self._attempt += 1
        self._retry_at = time.monotonic() + delay

    def _say_goodbye(self) -> None:
        conn = self._conn
        if conn is not None and conn.connected and conn.socket_open:
            self._drain(time.monotonic() + self.timers.stop_timeout)
        self._flush_acks(force=True, wait=True)
        if conn is not None and conn.socket_open:
            if self._goodbye is not None:
                mid = conn.publish(absolute(self.space_id, self._status_topic), self._goodbye, qos=1, retain=True)
                conn.wait_for_publish(mid, self.timers.stop_timeout)
                for ev in conn.poll(0):
                    if isinstance(ev, Published):
                        self._published(ev)
                self._flush_acks(force=True, wait=True)
            conn.disconnect()
        self._fire(LinkEvent.CLOSED)

    def _drain(self, deadline: float) -> None:
        """Before going: publish what is queued (e.g. the last messages of a space being left,
        committed just before the link was told to stop) and wait for their PUBACKs, until
        ``deadline``. What is left stays queued for the next connection."""
        conn = self._live()
        self._outbox_dirty = True
        while conn.socket_open and time.monotonic() < deadline:
            self._fill()
            if not self._inflight and not self._buffer and not self._outbox_dirty:
                return
            for ev in conn.poll(min(0.05, max(0.0, deadline - time.monotonic()))):
                if isinstance(ev, Published):
                    self._published(ev)

    def _close(self) -> None:
        self._drop_connection()

    _ACTIONS = {
        LinkAction.CONNECT: _connect,
        LinkAction.SUBSCRIBE: _subscribe,
        LinkAction.RESET_BACKOFF: _reset_backoff,
        LinkAction.BACKOFF: _backoff,
        LinkAction.SAY_GOODBYE: _say_goodbye,
        LinkAction.CLOSE: _close,
    }

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._inflight.clear()
        self._buffer.clear()
        self._lane_inflight.clear()
        self._lane_out.clear()
        self.subscribed = False

    # --- sending -------------------------------------------------------------------------------

    def _fill(self) -> None:
        """Hand queued outbox rows to the connection, as many as the in-flight window allows."""
        room = self._window() - len(self._inflight) - len(self._lane_inflight)
        if room <= 0:
            return
        if not self._buffer and (self._outbox_dirty or self._rescan):
            self._read_outbox()
        conn, space = self._live(), self.space_id
        sent = 0
        with conn.corked():  # the window goes to the socket in one write
            while sent < room and self._buffer:
                row, key = self._buffer.popleft()
                payload = row.payload
                if row.sign_at is not None:
                    try:
                        payload = sign_stored(key, payload, row.sign_at)
                    except ValueError:  # a damaged row: never publishable, so never retried
                        self._refuse(row.id, "the outbox row is damaged (it cannot be signed)")
                        continue
                self._inflight[conn.publish(absolute(space, row.topic), payload, qos=1, retain=row.retained)] = row.id
                sent += 1
        if sent:
            self._last_activity = time.monotonic()
        elif not self._inflight and not self._acked and not self._outbox_dirty and self._committer.idle():
            self._mark_synced()

    def _fill_lane(self) -> None:
        """Hand queued lane frames to the connection, in the room the outbox's rows leave in the window."""
        room = self._window() - len(self._inflight) - len(self._lane_inflight)
        if room <= 0 or not self._lane_out:
            return
        conn = self._live()
        with conn.corked():
            while room > 0 and self._lane_out:
                topic, frame = self._lane_out.popleft()
                self._lane_inflight.add(conn.publish(topic, frame, qos=1))
                room -= 1
        self._lane_room.set()
        self._last_activity = time.monotonic()

    def _read_outbox(self) -> None:
        """Read the next queued rows from a committed snapshot, never waiting for a writer: writers
        wake the link after their commit (``SyncService._notify``), so nothing queued is missed."""
        rescan = self._rescan
        after = 0 if rescan else self._cursor
        skip = frozenset(self._inflight.values()) if rescan else frozenset()
        self._rescan = False
        self._outbox_dirty = False  # cleared before reading: a wake-up from now on sets it again

        def fetch(c):
            return outbox.fetch_queued(c, self.space_id, after=after, limit=PREFETCH, skip=skip)

        # The key is taken before the snapshot: a row still unsigned in it was queued before any
        # rotation that key does not know of (a rotation signs the rows it finds with the old key).
        key = self.svc.signing_key()
        rows = self.svc.db.read(fetch)
        self._buffer.extend((row, key) for row in rows)
        if rows:
            self._cursor = max(self._cursor, rows[-1].id)
            self._outbox_dirty = True  # there may be more (committed meanwhile, or beyond PREFETCH)

    def _published(self, ev: Published) -> None:
        row = self._inflight.pop(ev.mid, None)
        if self._conn is not None:
            self._conn.forget_acked((ev.mid,))
        if row is None:
            self._lane_inflight.discard(ev.mid)
            return  # our status message
        if not self._acked and not self._refused:
            self._ack_due = time.monotonic() + self.timers.ack_flush
        if ev.ok:
            self._acked.append(row)
        else:
            self._refuse(row, ev.reason)
        self._last_activity = time.monotonic()

    def _refuse(self, row: int, reason: str) -> None:
        """Outbox row ``row`` will never be published: it is recorded with ``reason``, not retried."""
        if not self._acked and not self._refused:
            self._ack_due = time.monotonic() + self.timers.ack_flush
        self._refused.append((row, reason))
        self.svc.ratelog.warning(f"refused:{self.space_id}", "space %s: a message was not published (%s)",
                                 self.space_id, reason)

    def _flush_acks(self, force: bool = False, wait: bool = False) -> None:
        """Have acknowledged rows marked sent (by the committer thread: the link never waits on it)."""
        if self._acked or self._refused:
            if not force and len(self._acked) < ACK_BATCH and time.monotonic() < self._ack_due and self._inflight:
                return
            acked, refused = self._acked, self._refused
            self._acked, self._refused = [], []
            drained = not self._inflight and not self._outbox_dirty and not self._buffer
            self._committer.submit(acked, refused, drained)
            if drained:
                self.last_sync = rfc3339(self.svc.clock.now())
        if wait:
            self._committer.wait()

    def _mark_synced(self) -> None:
        ts = rfc3339(self.svc.clock.now())
        if self.last_sync is None or self.last_sync[:19] != ts[:19]:
            self.svc.db.write(lambda c: c.execute("UPDATE sync_space SET last_sync = ? WHERE space_id = ?",
                                                  (ts, self.space_id)))
        self.last_sync = ts

    # --- receiving -----------------------------------------------------------------------------

    def _subscribed(self, ev: Subscribed) -> None:
        refused = [code for code in ev.granted if code >= 0x80]
        if refused:
            self.last_error = f"the broker refused {len(refused)} subscription(s)"
            log.warning("space %s: %s", self.space_id, self.last_error)
        self.subscribed = True

    def _receive(self, batch: list[Incoming]) -> None:
        now = self.svc.clock.now()
        if not self._take([Arrival(ev.topic, ev.payload, ev.retain, now) for ev in batch]):
            return
        conn = self._conn
        if conn is not None:
            with conn.corked():
                for ev in batch:
                    conn.ack(ev.mid, ev.qos)
        self._last_activity = time.monotonic()

    def _take(self, arrivals: list[Arrival]) -> bool:
        """Check, apply and account for ``arrivals``; False if the store failed (acknowledge nothing)."""
        try:
            taken = self._intake.take(arrivals)
        except ApplianceError as e:  # the store failed: acknowledge nothing, get it all again later
            self.last_error = e.message("en")
            log.warning("space %s: could not store received messages (%s)", self.space_id, self.last_error)
            self._drop_connection()
            return False
        self._intake.report(taken)
        result = taken.result
        if result is not None:
            if result.gap and self._gap_due is None:
                self._gap_due = time.monotonic() + self.timers.resend_after
            if result.confirm:
                self._confirm |= result.confirm
                if self._confirm_due is None:
                    self._confirm_due = time.monotonic() + self.timers.confirm_delay
            if result.outcomes:
                self.last_sync = rfc3339(self.svc.clock.now())
        return True

    def _retry_quarantined(self) -> None:
        """Try again what an older version of dsnode kept in quarantine (it may have fixed the bug)."""
        try:
            rows = self.svc.db.read(lambda c: quarantine.rows(c, self.space_id, older_only=True))
        except ApplianceError as e:
            self.last_error = e.message("en")
            return
        if rows:
            log.info("space %s: trying %d quarantined message(s) again", self.space_id, len(rows))
        arrivals = arrivals_of(rows)
        for i in range(0, len(arrivals), INCOMING_BATCH):
            if not self._take(arrivals[i : i + INCOMING_BATCH]):
                return

    # --- confirmations and gaps ----------------------------------------------------------------

    def _requeue_unconfirmed(self) -> None:
        oldest_in_flight = min(self._inflight.values(), default=None)
        ready = [s for s, upto in list(self._requeue.items()) if oldest_in_flight is None or oldest_in_flight > upto]
        if not ready:
            return
        self._flush_acks(force=True, wait=True)
        for stream in ready:
            self._requeue.pop(stream, None)
        again = self.svc.db.write(lambda c: sum(outbox.requeue_unconfirmed(c, self.space_id, s) for s in ready))
        if again:
            log.info("space %s: sending %d unconfirmed message(s) again", self.space_id, again)
            self.request_rescan()

    def _send_confirmations(self) -> None:
        """Tell senders how far their streams to this node arrived (cumulative, one message each)."""
        pending, self._confirm, self._confirm_due = self._confirm, set(), None

        def work(c) -> None:
            for sender, stream in sorted(pending):
                loaded = inbox.load_track(c, self.space_id, sender, stream)
                if loaded is not None and loaded[0].contiguous > 0:
                    self.svc.send_control(c, self.space_id, to=sender, type="dsnode.sync.ack",
                                          body={"stream": stream, "through": loaded[0].contiguous})

        if self.config.status in ("member", "operator"):
            try:
                self.svc.db.write(work)
            except ApplianceError as e:
                self.last_error = e.message("en")

    def _request_resends(self) -> None:
        """Ask senders to publish again what is missing below a gap; give up after a few tries."""
        t = self.timers

        def work(c) -> bool:
            waiting = False
            for sender, stream, track, attempts in inbox.gapped_streams(c, self.space_id):
                if attempts >= t.resend_attempts:
                    log.info("space %s: gave up waiting for %d message(s) of %s from %s", self.space_id,
                             sum(hi - lo + 1 for lo, hi in track.missing()), stream, sender)
                    track.skip_through(track.above[-1])
                    inbox.save_track(c, self.space_id, sender, stream, track, 0)
                    continue
                self.svc.send_control(c, self.space_id, to=sender, type="dsnode.sync.resend",
                                      body={"stream": stream, "missing": track.missing()})
                inbox.save_track(c, self.space_id, sender, stream, track, attempts + 1)
                waiting = True
            return waiting

        try:
            waiting = self.svc.db.write(work) if self.config.status in ("member", "operator") else False
        except ApplianceError as e:
            self.last_error = e.message("en")
            waiting = True
        self._gap_round = self._gap_round + 1 if waiting else 0
        self._gap_due = (time.monotonic() + t.resend_after * (2 ** min(self._gap_round, 6))) if waiting else None


def client_id(config: SpaceConfig, node_did: str) -> str:
    """A stable MQTT client id per node, space and account (so the broker keeps our session), that
    no one without the account's password can work out: on a broker that lets any client id take
    over a session, another member must not be able to push this node off by using its id."""
    digest = hashlib.sha256(f"{config.space_id}|{node_did}|{config.username}|{config.password or ''}"
                            .encode("utf-8", "surrogatepass")).hexdigest()
    return f"dsnode-{digest[:20]}"

