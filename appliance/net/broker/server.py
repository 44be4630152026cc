"""An MQTT 5 broker in Python (asyncio on its own thread; packets by the ``mqtt5`` codec), for a space
with no mosquitto.

What the nodes' client (:mod:`appliance.net.mqtt`) relies on is implemented: persistent sessions
(``clean_start`` false with a session expiry: QoS 1 messages for an offline session are queued and
delivered, and unacknowledged ones sent again, on reconnect), QoS 0 and 1 both ways (QoS 2 is
refused: the broker says its maximum QoS is 1), retained messages (an empty retained payload
clears one), Will messages (with a will delay), subscription options no-local,
retain-as-published and retain handling, wildcards, UNSUBSCRIBE, PINGREQ and keep-alive,
DISCONNECT with and without the Will, session take-over, username and password, and the access
rules of :mod:`appliance.net.broker.access` (mosquitto dynamic-security semantics and its
``$CONTROL`` commands). Not implemented: QoS 2, shared subscriptions, subscription identifiers,
topic aliases, enhanced authentication, message expiry (the property is not forwarded).

Packets are encoded and decoded by the ``mqtt5`` package (a sans-I/O codec); framing, sessions,
routing, the retained store and access control are here. A malformed or out-of-protocol packet
closes only that client's connection. Everything is in memory: a restart forgets sessions,
queued and retained messages (members publish their retained state again when they reconnect).

No client can make the broker hold without bound (:class:`~appliance.net.broker.limits.BrokerLimits`):
a slow reader's socket buffer is capped (QoS 0 beyond it is dropped and counted, QoS 1 waits in
the session's queue), the queue is capped in messages and bytes (a connected client whose queue
is full is disconnected with QUOTA_EXCEEDED: it reads too slowly), and so are the filters in one
SUBSCRIBE, the filters a session holds and the sessions of one account. A client id belongs to
the account that made its session: another account using it is refused, not let take it over.
A message goes to a session once however many of its filters match, and the filters are found
through an index (:class:`~appliance.net.broker.topics.FilterIndex`), not by trying each one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import mqtt5

from appliance.net.broker.access import CONTROL_TOPIC, RECEIVE, RESPONSE_TOPIC, SEND, SUBSCRIBE, Access, OpenAccess
from appliance.net.broker.limits import BrokerLimits
from appliance.net.broker.topics import FilterIndex, matches, valid_filter, valid_topic

log = logging.getLogger(__name__)

RECEIVE_MAXIMUM = 65535  # QoS 1 messages a client may have unacknowledged towards us
CONNECT_TIMEOUT = 10.0
NEVER_EXPIRES = 0xFFFFFFFF

R = mqtt5.DisconnectReasonCode


class _Close(Exception):
    """End this client's connection (after sending DISCONNECT with ``reason`` when it has one)."""

    def __init__(self, why: str, reason: R | None = None) -> None:
        super().__init__(why)
        self.reason = reason


@dataclass
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    origin: str | None  # publisher's client id, for no-local
    props: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Sub:
    qos: int
    no_local: bool
    retain_as_published: bool


_FORWARDED = ("payload_format_indicator", "content_type", "response_topic", "correlation_data", "user_properties")


def _props(packet) -> dict:
    return {name: value for name in _FORWARDED if (value := getattr(packet, name, None))}


class Session:
    def __init__(self, client_id: str, username: str | None) -> None:
        self.client_id = client_id
        self.username = username
        self.subs: dict[str, Sub] = {}
        self.expiry = 0
        self.conn: Connection | None = None
        self.queue: deque[tuple[Message, bool]] = deque()  # QoS 1, not sent yet
        self.queued_bytes = 0
        self.resend: deque[int] = deque()  # in-flight packet ids to send again (after a reconnect)
        self.started = time.monotonic()
        self.inflight: dict[int, tuple[Message, bool]] = {}  # sent, waiting for PUBACK
        self.expiry_timer: asyncio.TimerHandle | None = None
        self.will_timer: asyncio.TimerHandle | None = None
        self._pid = 0

    def next_pid(self) -> int:
        while True:
            self._pid = self._pid % 65535 + 1
            if self._pid not in self.inflight:
                return self._pid

    def cancel_timers(self) -> None:
        for timer in (self.expiry_timer, self.will_timer):
            if timer is not None:
                timer.cancel()
        self.expiry_timer = self.will_timer = None


class Connection:
    def __init__(self, writer: asyncio.StreamWriter, write_buffer: int) -> None:
        self.writer = writer
        self.session: Session | None = None
        self.will: tuple[Message, int] | None = None  # message, will delay (s)
        self.receive_max = RECEIVE_MAXIMUM
        self.closing = False
        self.detached = False
        self.draining = False  # a task waits for the socket buffer to empty, then sends the queue
        self.write_buffer = write_buffer
        # past this the client reads nothing at all (even its acknowledgements pile up): cut it off
        self.hard_limit = 4 * write_buffer + 1024 * 1024
        # packets of this turn of the event loop, written together at its end (one send, not one each)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._loop = asyncio.get_running_loop()

    def buffered(self) -> int:
        """Bytes written but not yet taken by the client's socket."""
        transport = self.writer.transport
        if transport is None or transport.is_closing():
            return 0
        return transport.get_write_buffer_size() + self._pending_bytes

    @property
    def congested(self) -> bool:
        return self.buffered() > self.write_buffer  # as asyncio pauses writing: past the high-water mark

    def send(self, packet) -> bool:
        """Write ``packet``; False when the connection is closing or has just been cut off."""
        if self.closing:
            return False
        try:
            data = packet.write()
        except BaseException as e:  # noqa: BLE001 - the codec panics (a BaseException) on what it cannot encode
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            log.warning("embedded broker: could not encode a %s (%s)", type(packet).__name__, type(e).__name__)
            return True
        if self.buffered() + len(data) > self.hard_limit:
            self.closing = True
            self._pending.clear()
            self.writer.transport.abort()
            return False
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)
        self._pending_bytes += len(data)
        return True

    def flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        transport = self.writer.transport
        if transport is None or transport.is_closing():
            return
        try:
            self.writer.write(data)
        except (OSError, RuntimeError, ValueError):
            self.close()

    def close(self) -> None:
        """Flush what is written, then close; the reader sees end of stream."""
        self.flush()
        self.closing = True
        try:
            self.writer.close()
        except (OSError, RuntimeError):
            pass


class _RateLog:
    def __init__(self, interval: float = 10.0) -> None:
        self._interval = interval
        self._last: dict[str, float] = {}

    def info(self, key: str, message: str, *args) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -self._interval) >= self._interval:
            self._last[key] = now
            log.info(message, *args)


class EmbeddedBroker:
    """``EmbeddedBroker(document)``; ``port = broker.start()``; ``broker.stop()``.

    ``document`` is a dynamic-security document (accounts, roles, default access), as
    :func:`appliance.operator.broker_config.embedded_broker_document` makes; ``None`` runs an open
    broker with no accounts, for tests only. ``ssl_context`` (a server context) serves TLS.
    """

    def __init__(self, document: dict | None = None, *, ssl_context: ssl.SSLContext | None = None,
                 limits: BrokerLimits | None = None) -> None:
        self.access = Access(document) if document is not None else OpenAccess()
        self.ssl_context = ssl_context
        self.limits = limits or BrokerLimits()
        self.max_packet_size = self.limits.max_packet_size
        self.host: str | None = None
        self.port: int | None = None
        self.sessions: dict[str, Session] = {}
        self.retained: dict[str, Message] = {}
        self.subscriptions = FilterIndex()  # filter -> {client id: Sub}
        # topic -> who receives it: [(client id, (QoS, retain as published), the same without
        # no-local filters)], valid while subscriptions, sessions and rules stay as they were
        self._routes: dict[str, list] = {}
        self._routes_for: tuple = ()
        self._routes_held = 0  # receivers remembered, over all topics (bounds the memory: ~100 B each)
        self._sessions_version = 0
        # what the broker refused or dropped to stay bounded, by reason (read from any thread)
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._conns: set[Connection] = set()
        self._stopping = False
        self._ratelog = _RateLog()

    # --- lifecycle (any thread) -------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0) -> int:
        """Listen on ``host:port`` (0: a free port) and serve on a thread; returns the port.

        Raises OSError if it cannot listen there.
        """
        if self._thread is not None:
            raise RuntimeError("the broker is already running")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, args=(host, port, ready, failure),
                                        name="dsnode-embedded-broker", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise OSError(f"the embedded broker did not start on {host}:{port}")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        self.host = host
        log.info("embedded MQTT broker listening on %s:%d", host, self.port)
        assert self.port is not None  # the loop set it before it said it was ready
        return self.port

    def stop(self, timeout: float = 10.0) -> None:
        """Close every connection and the listener, end the thread. Idempotent."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            self._thread = None

    def load(self, document: dict) -> None:
        """Replace the accounts and rules (thread-safe; live connections keep their sessions)."""
        access = Access(document)
        if self._loop is None or self._thread is None:
            self.access = access
        else:
            self._loop.call_soon_threadsafe(setattr, self, "access", access)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def __enter__(self) -> EmbeddedBroker:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self, host: str, port: int, ready: threading.Event, failure: list) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            try:
                self._server = loop.run_until_complete(asyncio.start_server(
                    self._serve, host, port, ssl=self.ssl_context, reuse_address=True))
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as e:  # noqa: BLE001 - handed to start()
                failure.append(e)
                return
            finally:
                ready.set()
            loop.run_forever()
        finally:
            loop.close()
            self._loop = None

    async def _shutdown(self) -> None:
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            conn.closing = True
            conn.writer.transport.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        for session in self.sessions.values():
            session.cancel_timers()
        self.sessions.clear()
        self.subscriptions = FilterIndex()
        self._routes, self._routes_for = {}, ()
        self.retained.clear()

    # --- one client -----------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = Connection(writer, self.limits.write_buffer)
        self._conns.add(conn)
        _no_delay(writer)
        writer.transport.set_write_buffer_limits(high=self.limits.write_buffer)
        try:
            packet = await asyncio.wait_for(self._read(reader), CONNECT_TIMEOUT)
            if not isinstance(packet, mqtt5.ConnectPacket):
                raise _Close("the first packet was not CONNECT")
            if self._connect(conn, packet):
                timeout = packet.keep_alive * 1.5 if packet.keep_alive else None
                while not conn.closing:
                    packet = await asyncio.wait_for(self._read(reader), timeout)
                    self._handle(conn, packet)
        except _Close as e:
            if e.reason is not None and conn.session is not None:
                conn.send(mqtt5.DisconnectPacket(reason_code=e.reason))
            self._ratelog.info(f"close:{e}", "embedded broker: closed a client connection (%s)", e)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, OSError, ssl.SSLError):
            pass  # the client went away, or stayed silent past its keep-alive
        except asyncio.CancelledError:
            pass
        except Exception:  # a bug: drop this client only, keep serving the others
            log.exception("embedded broker: a client connection failed")
        finally:
            self._tasks.discard(task)
            self._conns.discard(conn)
            if not self._stopping:
                self._detach(conn)
            conn.close()

    async def _read(self, reader: asyncio.StreamReader):
        """One whole packet; _Close for anything malformed or too large."""
        header = bytearray(await reader.readexactly(1))
        length, multiplier = 0, 1
        for _ in range(4):
            byte = (await reader.readexactly(1))[0]
            header.append(byte)
            length += (byte & 0x7F) * multiplier
            multiplier *= 128
            if not byte & 0x80:
                break
        else:
            raise _Close("malformed packet (remaining length)", R.MALFORMED_PACKET)
        if len(header) + length > self.max_packet_size:
            raise _Close("packet too large", R.PACKET_TOO_LARGE)
        data = bytes(header) + await reader.readexactly(length)
        try:
            packet, used = mqtt5.read(memoryview(data))
        except BaseException as e:  # noqa: BLE001 - the codec's word on a bad packet (ValueError, IndexError,
            # and a Rust panic, a BaseException, for a string that is not UTF-8)
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            self.counters["malformed"] += 1
            raise _Close(f"malformed packet ({type(e).__name__})", R.MALFORMED_PACKET) from None
        if used != len(data):
            raise _Close("malformed packet (length)", R.MALFORMED_PACKET)
        return packet

    def _connect(self, conn: Connection, p: mqtt5.ConnectPacket) -> bool:
        C = mqtt5.ConnAckReasonCode
        refusal = None
        if p.authentication_method:
            refusal = C.BAD_AUTHENTICATION_METHOD
        elif not self.access.authenticate(p.username, p.password):
            refusal = C.BAD_USER_NAME_OR_PASSWORD
        elif p.will is not None and (not valid_topic(p.will.topic) or int(p.will.qos) > 1):
            refusal = C.TOPIC_NAME_INVALID if not valid_topic(p.will.topic) else C.QUALITY_NOT_SUPPORTED
        client_id = p.client_id or f"auto-{secrets.token_hex(8)}"
        session = self.sessions.get(client_id)
        if refusal is None and session is not None and session.username != p.username:
            refusal = C.CLIENT_ID_NOT_VALID  # another account's session: not for this one to take over
            self.counters["refused_client_id"] += 1
        elif refusal is None and session is None and not self._room_for_session(p.username):
            refusal = C.QUOTA_EXCEEDED
            self.counters["refused_sessions"] += 1
        if refusal is not None:
            self._ratelog.info(f"refused:{refusal}", "embedded broker: refused a connection (%s)", refusal.name)
            conn.send(mqtt5.ConnAckPacket(reason_code=refusal))
            conn.close()
            return False
        if session is not None and session.conn is not None:  # take-over
            old = session.conn
            old.send(mqtt5.DisconnectPacket(reason_code=R.SESSION_TAKEN_OVER))
            self._detach(old)
            old.close()
            session = self.sessions.get(client_id)
        if session is not None and p.clean_start:
            self._discard(session)
            session = None
        present = session is not None
        if session is None:
            session = self.sessions[client_id] = Session(client_id, p.username)
            self._sessions_version += 1
        session.cancel_timers()  # back before its expiry, and before a delayed Will went out
        session.expiry = p.session_expiry_interval
        session.conn, conn.session = conn, session
        conn.receive_max = min(p.receive_max or RECEIVE_MAXIMUM, self.limits.max_inflight)
        if p.will is not None:
            conn.will = (Message(p.will.topic, p.will.payload or b"", int(p.will.qos), p.will.retain, client_id,
                                 _props(p.will)), p.will.will_delay_interval)
        conn.send(mqtt5.ConnAckPacket(
            session_present=present, receive_max=min(self.limits.max_inflight, RECEIVE_MAXIMUM), topic_alias_max=0,
            max_qos=mqtt5.QoS.AT_LEAST_ONCE, retain_available=True, max_packet_size=self.max_packet_size,
            wildcard_subscription_available=True, subscription_id_available=False,
            shared_subscription_available=False, assigned_client_id=None if p.client_id else client_id))
        if present:
            session.resend = deque(session.inflight)  # sent again first, as fast as the client reads
            self._pump(session)
        return True

    def _detach(self, conn: Connection) -> None:
        """The connection ended: publish its Will (unless it said DISCONNECT), start the session's expiry."""
        if conn.detached:
            return
        conn.detached = conn.closing = True
        session = conn.session
        if session is None or session.conn is not conn:
            return
        session.conn = None
        loop = self._loop
        assert loop is not None  # this runs on it
        if conn.will is not None:
            will, delay = conn.will
            delay = min(delay, session.expiry)
            if delay > 0:
                session.will_timer = loop.call_later(delay, self._publish_will, session.username, will)
            else:
                self._publish_will(session.username, will)
        if session.expiry == 0:
            self._discard(session)
        elif session.expiry != NEVER_EXPIRES:
            session.expiry_timer = loop.call_later(session.expiry, self._expire, session)

    def _publish_will(self, username: str | None, will: Message) -> None:
        if self.access.allowed(username, SEND, will.topic) and not will.topic.startswith("$"):
            self._route(will)

    def _expire(self, session: Session) -> None:
        if session.conn is None:
            self._discard(session)

    def _room_for_session(self, username: str | None) -> bool:
        """May ``username`` start one more session? Its oldest kept (offline) session makes room."""
        if self.access.open:
            return True  # no accounts (tests): nothing to count by
        own = [s for s in self.sessions.values() if s.username == username]
        if len(own) < self.limits.max_sessions_per_account:
            return True
        offline = [s for s in own if s.conn is None]
        if not offline:
            return False
        self._discard(min(offline, key=lambda s: s.started))
        self.counters["sessions_replaced"] += 1
        return True

    def _discard(self, session: Session) -> None:
        session.cancel_timers()
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]
            self._sessions_version += 1
            for pattern in session.subs:
                self.subscriptions.remove(pattern, session.client_id)
            session.subs.clear()
            session.queue.clear()
            session.queued_bytes = 0

    # --- packets from a connected client ----------------------------------------------------------

    def _handle(self, conn: Connection, p) -> None:
        session = conn.session
        assert session is not None  # packets after CONNECT only
        if isinstance(p, mqtt5.PublishPacket):
            self._on_publish(conn, session, p)
        elif isinstance(p, mqtt5.PubAckPacket):
            done = session.inflight.pop(p.packet_id, None)
            if done is not None:
                session.queued_bytes -= len(done[0].payload)
            self._pump(session)
        elif isinstance(p, mqtt5.SubscribePacket):
            self._on_subscribe(conn, session, p)
        elif isinstance(p, mqtt5.UnsubscribePacket):
            codes = []
            for f in p.patterns:
                if session.subs.pop(f, None) is not None:
                    self.subscriptions.remove(f, session.client_id)
                    codes.append(mqtt5.UnsubAckReasonCode.SUCCESS)
                else:
                    codes.append(mqtt5.UnsubAckReasonCode.NO_SUBSCRIPTION_EXISTED)
            conn.send(mqtt5.UnsubAckPacket(p.packet_id, codes))
        elif isinstance(p, mqtt5.PingReqPacket):
            conn.send(mqtt5.PingRespPacket())
        elif isinstance(p, mqtt5.DisconnectPacket):
            if p.reason_code != R.DISCONNECT_WITH_WILL_MESSAGE:
                conn.will = None
            if p.session_expiry_interval is not None and session.expiry != 0:
                session.expiry = p.session_expiry_interval
            conn.closing = True
        else:
            raise _Close(f"unexpected {type(p).__name__}", R.PROTOCOL_ERROR)

    def _on_publish(self, conn: Connection, session: Session, p: mqtt5.PublishPacket) -> None:
        qos = int(p.qos)
        if qos > 1:
            raise _Close("QoS 2 is not supported", R.QOS_NOT_SUPPORTED)
        if p.topic_alias is not None:
            raise _Close("topic aliases are not supported", R.TOPIC_ALIAS_INVALID)
        if not valid_topic(p.topic):
            raise _Close("invalid topic name", R.TOPIC_NAME_INVALID)
        reason = mqtt5.PubAckReasonCode.SUCCESS
        if p.topic == CONTROL_TOPIC and not self.access.open and self.access.allowed(session.username, SEND, p.topic):
            response, removed = self.access.control(p.payload)
            self._route(Message(RESPONSE_TOPIC, json.dumps(response).encode(), 1, False, None))
            for username in removed:
                self._kick(username)
        elif p.topic.startswith("$") or not self.access.allowed(session.username, SEND, p.topic):
            reason = mqtt5.PubAckReasonCode.NOT_AUTHORIZED
            self._ratelog.info(f"denied:{session.username}", "embedded broker: denied a publish by %s",
                               session.username)
        else:
            self._route(Message(p.topic, p.payload, qos, p.retain, session.client_id, _props(p)))
        if qos == 1:
            assert p.packet_id is not None  # a QoS 1 PUBLISH has one
            conn.send(mqtt5.PubAckPacket(p.packet_id, reason_code=reason))

    def _on_subscribe(self, conn: Connection, session: Session, p: mqtt5.SubscribePacket) -> None:
        S = mqtt5.SubAckReasonCode
        codes: list[mqtt5.SubAckReasonCode] = []
        send_retained: dict[str, int] = {}
        limits = self.limits
        for n, f in enumerate(p.topic_filters):
            pattern = f.pattern
            if n >= limits.max_filters_per_subscribe or (
                    pattern not in session.subs and len(session.subs) >= limits.max_subscriptions):
                codes.append(S.QUOTA_EXCEEDED)
                self.counters["refused_filters"] += 1
            elif pattern.startswith("$share/"):
                codes.append(S.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED)
            elif not valid_filter(pattern):
                codes.append(S.TOPIC_FILTER_INVALID)
            elif not self.access.allowed(session.username, SUBSCRIBE, pattern):
                codes.append(S.NOT_AUTHORIZED)
            else:
                qos = min(int(f.max_qos), 1)
                existed = pattern in session.subs
                sub = session.subs[pattern] = Sub(qos, bool(f.no_local), bool(f.retain_as_published))
                self.subscriptions.add(pattern, session.client_id, sub)
                codes.append(S(qos))
                handling = int(f.retain_handling)
                if handling == 0 or (handling == 1 and not existed):
                    send_retained[pattern] = max(qos, send_retained.get(pattern, 0))
        conn.send(mqtt5.SubAckPacket(p.packet_id, codes))
        if not send_retained:
            return
        due: dict[str, int] = {}  # each retained message once, however many of the new filters match it
        for msg in list(self.retained.values()):
            for pattern, qos in send_retained.items():
                if matches(pattern, msg.topic):
                    due[msg.topic] = max(due.get(msg.topic, 0), min(qos, msg.qos))
        for topic, qos in due.items():
            kept = self.retained.get(topic)
            if kept is not None and self.access.allowed(session.username, RECEIVE, topic):
                self._deliver(session, kept, qos, True)

    def _kick(self, username: str) -> None:
        """An account was deleted: close its connections and forget its sessions."""
        for session in [s for s in self.sessions.values() if s.username == username]:
            conn = session.conn
            self._discard(session)
            if conn is not None:
                conn.send(mqtt5.DisconnectPacket(reason_code=R.ADMINISTRATIVE_ACTION))
                conn.close()

    # --- routing --------------------------------------------------------------------------------

    def _route(self, msg: Message) -> None:
        if msg.retain:
            if msg.payload:
                self.retained[msg.topic] = msg
            else:
                self.retained.pop(msg.topic, None)
        origin, sessions = msg.origin, self.sessions
        for client_id, anyone, not_local in self._receivers(msg.topic):
            decides = not_local if client_id == origin else anyone
            session = sessions.get(client_id)
            if decides is None or session is None:
                continue
            qos, rap = decides
            self._deliver(session, msg, min(qos, msg.qos), msg.retain and rap)

    def _receivers(self, topic: str) -> list:
        """Who may receive ``topic``, once per session (remembered per topic until a subscription,
        a session or the rules change: a space's messages go to the same topics again and again)."""
        now = (id(self.access), self.access.version, self.subscriptions.version, self._sessions_version)
        if now != self._routes_for or self._routes_held > ROUTES_HELD:
            self._routes, self._routes_for, self._routes_held = {}, now, 0
        found = self._routes.get(topic)
        if found is not None:
            return found
        merged: dict[str, list] = {}  # client id -> [any filter's (QoS, rap), a filter without no-local's]
        for client_id, sub in self.subscriptions.match(topic):
            both = merged.setdefault(client_id, [None, None])
            for i in (0, 1) if not sub.no_local else (0,):
                had = both[i]
                both[i] = (sub.qos, sub.retain_as_published) if had is None else (
                    max(had[0], sub.qos), had[1] or sub.retain_as_published)
        allowed = self.access.allowed
        found = [(cid, both[0], both[1]) for cid, both in merged.items()
                 if (s := self.sessions.get(cid)) is not None and allowed(s.username, RECEIVE, topic)]
        self._routes[topic] = found
        self._routes_held += len(found) + 1
        return found

    def _deliver(self, session: Session, msg: Message, qos: int, retain: bool) -> None:
        conn = session.conn
        if qos == 0:
            if conn is None or conn.closing:
                return
            if conn.congested:  # the client does not keep up: QoS 0 may be lost, so it is
                self.counters["dropped_qos0"] += 1
                self._ratelog.info(f"slow:{session.client_id}", "embedded broker: %s reads too slowly; "
                                   "dropping QoS 0 messages", session.client_id)
                return
            conn.send(self._publish_packet(msg, 0, retain, None))
            return
        limits = self.limits
        if len(session.queue) >= limits.max_queued or session.queued_bytes + len(msg.payload) > limits.max_queued_bytes:
            self.counters["dropped_queue_full"] += 1
            self._ratelog.info(f"full:{session.client_id}", "embedded broker: the queue of %s is full; dropping",
                               session.client_id)
            if conn is not None and not conn.closing:
                self.counters["disconnected_slow"] += 1
                conn.send(mqtt5.DisconnectPacket(reason_code=R.QUOTA_EXCEEDED))
                self._detach(conn)
                conn.close()
            return
        session.queue.append((msg, retain))
        session.queued_bytes += len(msg.payload)
        self._pump(session)

    def _pump(self, session: Session) -> None:
        conn = session.conn
        while conn is not None and not conn.closing and session.resend:
            if conn.congested:
                self._drain_later(session, conn)
                return
            pid = session.resend.popleft()
            if pid in session.inflight:
                msg, retain = session.inflight[pid]
                conn.send(self._publish_packet(msg, 1, retain, pid, duplicate=True))
        while conn is not None and not conn.closing and session.queue and len(session.inflight) < conn.receive_max:
            if conn.congested:
                self._drain_later(session, conn)
                return
            msg, retain = session.queue.popleft()  # its bytes count until it is acknowledged
            pid = session.next_pid()
            session.inflight[pid] = (msg, retain)
            conn.send(self._publish_packet(msg, 1, retain, pid))

    def _drain_later(self, session: Session, conn: Connection) -> None:
        """Send the rest of the queue once the client has taken what its socket buffer holds."""
        if conn.draining:
            return
        conn.draining = True

        async def drain() -> None:
            try:
                while conn.congested and not conn.closing:
                    await conn.writer.drain()
                    if conn.congested:  # not paused yet at exactly the mark: look again shortly
                        await asyncio.sleep(0.01)
            except (OSError, RuntimeError):
                return
            finally:
                conn.draining = False
            if session.conn is conn:
                self._pump(session)

        assert self._loop is not None  # this runs on it
        task = self._loop.create_task(drain())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _publish_packet(msg: Message, qos: int, retain: bool, pid: int | None, duplicate: bool = False):
        return mqtt5.PublishPacket(msg.topic, msg.payload, qos=mqtt5.QoS(qos), retain=retain, packet_id=pid,
                                   duplicate=duplicate, **msg.props)


ROUTES_HELD = 200_000

COUNTERS = ("malformed", "dropped_qos0", "dropped_queue_full", "disconnected_slow", "refused_filters",
            "refused_client_id", "refused_sessions", "sessions_replaced")


def _no_delay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
