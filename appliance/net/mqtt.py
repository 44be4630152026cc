"""A thin MQTT 5 connection over paho-mqtt 2.x, driven by its owner's thread.

paho runs no thread of its own here: the owner calls :meth:`MqttConnection.poll`, which selects
on the socket (and a :class:`Waker`, so other threads can interrupt the wait), lets paho read,
write and keep the session alive, and returns what happened as plain event objects. paho's
callbacks (CallbackAPIVersion.VERSION2) do nothing but append to that list, so no work runs in
paho's code paths, and a publish from the owner's thread goes straight to the socket without a
thread hop.

One ``MqttConnection`` is one connection: after it is lost, make a new one (the broker keeps the
session: ``clean_start=False`` with a session expiry, so QoS 1 messages for an offline node wait
for it). Incoming QoS 1 messages are acknowledged by the owner (``manual_ack``) once their effect
is committed, so a crash before that makes the broker deliver them again.

Socket I/O is buffered here, under paho: paho writes each packet with its own ``send`` and reads
each packet's header a byte at a time with ``recv(1)``. The connection hands paho a write buffer
(flushed with one ``send`` per call of the owner's, or per :meth:`MqttConnection.corked` block) and
a read buffer (filled with one ``recv`` of up to 64 KiB), so a window of PUBLISHes is one syscall
and a burst of PUBACKs another. Order on the wire is paho's order. QoS 1 PUBLISHes on a live
connection (the outbox's stream) are encoded here and their PUBACKs matched here, without paho's
per-message objects; everything else (CONNECT, SUBSCRIBE, acks, keepalive, a publish before
CONNACK) is paho's.

Every timer, port and credential is passed in.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import ssl
import tempfile
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

log = logging.getLogger(__name__)

MAX_RECEIVE = 65535  # MQTT 5 default Receive Maximum when the broker names none
READ_CHUNK = 65536  # bytes asked of the socket per recv
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class ConnectFailed(Exception):
    """The broker could not be reached or refused the connection (text says why, no secrets)."""


@dataclass(frozen=True)
class BrokerParams:
    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    tls_ca_pem: str | None = None  # trust anchor: TLS with server verification when given
    tls_cert_pem: str | None = None  # client certificate and key, when the broker asks for them
    tls_key_pem: str | None = None
    keepalive: int = 30
    session_expiry: int = 7 * 24 * 3600  # seconds the broker keeps our session while we are away
    connect_timeout: float = 10.0
    clean_start: bool = False

    def __repr__(self) -> str:
        return f"BrokerParams({self.host}:{self.port}, client_id={self.client_id!r}, tls={self.tls_ca_pem is not None})"


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


# --- events handed to the owner ----------------------------------------------------------------


@dataclass(frozen=True)
class Connected:
    session_present: bool
    receive_maximum: int


@dataclass(frozen=True)
class ConnectRefused:
    reason: str


@dataclass(frozen=True)
class Disconnected:
    reason: str


@dataclass(frozen=True)
class Published:
    mid: int
    ok: bool
    reason: str


@dataclass(frozen=True)
class Subscribed:
    mid: int
    granted: tuple[int, ...]


INVALID_TOPIC = "\ufffd(not UTF-8)"
"""The topic of an incoming message whose topic name was not valid UTF-8."""


@dataclass(frozen=True)
class Incoming:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int


class Waker:
    """Lets another thread interrupt :meth:`MqttConnection.poll` (a socket pair; thread-safe)."""

    def __init__(self) -> None:
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)
        self._w.setblocking(False)

    def wake(self) -> None:
        try:
            self._w.send(b"\0")
        except (BlockingIOError, OSError):  # already pending, or closed: either way it will look
            pass

    def fileno(self) -> int:
        return self._r.fileno()

    def drain(self) -> None:
        try:
            while self._r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def wait(self, timeout: float) -> None:
        if timeout > 0:
            select.select([self._r], [], [], timeout)
        self.drain()

    def close(self) -> None:
        self._r.close()
        self._w.close()


def tls_context(ca_pem: str, cert_pem: str | None = None, key_pem: str | None = None) -> ssl.SSLContext:
    """TLS 1.2+ client context that verifies the broker against ``ca_pem`` (and its host name).

    ``ssl`` loads a client key only from a file, so it is written to a private temporary folder
    and removed as soon as it is loaded.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname by default
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_verify_locations(cadata=ca_pem)
    except (ssl.SSLError, ValueError) as e:
        raise ConnectFailed(f"the broker's trust anchor is not a valid PEM certificate ({e})") from None
    if cert_pem:
        with tempfile.TemporaryDirectory(prefix="dsnode-tls-") as tmp:
            cert, key = Path(tmp) / "client.crt", Path(tmp) / "client.key"
            for path, text in ((cert, cert_pem), (key, key_pem or "")):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="ascii") as f:
                    f.write(text)
            try:
                ctx.load_cert_chain(cert, key if key_pem else None)
            except (ssl.SSLError, ValueError) as e:
                raise ConnectFailed(f"the client certificate cannot be used ({e})") from None
    return ctx


class MqttConnection:
    """One MQTT 5 connection, driven by :meth:`poll` on its owner's thread."""

    def __init__(self, params: BrokerParams, *, will: Will | None = None, waker: Waker | None = None) -> None:
        self.params = params
        self._waker = waker
        self._events: deque = deque()
        self._acked: set[int] = set()
        self._wbuf = bytearray()  # bytes paho has "sent", not yet given to the socket
        self._rbuf = b""  # bytes read from the socket, not yet taken by paho
        self._rpos = 0
        self._corked = 0
        self._direct = False
        self._fast: set[int] = set()  # message ids of our own QoS 1 PUBLISHes awaiting PUBACK
        self.connected = False
        self.closed = False
        self.receive_maximum = MAX_RECEIVE
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=params.client_id, protocol=paho.MQTTv5,
                        manual_ack=True)
        c.max_inflight_messages_set(0)  # the owner keeps its own window (see receive_maximum)
        c.max_queued_messages_set(0)
        c.connect_timeout = params.connect_timeout
        c.suppress_exceptions = False
        if params.username is not None:
            c.username_pw_set(params.username, params.password)
        if params.tls_ca_pem:
            c.tls_set_context(tls_context(params.tls_ca_pem, params.tls_cert_pem, params.tls_key_pem))
        if will is not None:
            c.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe
        c._sock_send = self._buffer_send  # type: ignore[method-assign]  # noqa: SLF001 - see the module docstring
        c._sock_recv = self._buffered_recv  # type: ignore[method-assign]  # noqa: SLF001
        self._paho_puback = c._handle_pubackcomp  # noqa: SLF001
        c._handle_pubackcomp = self._handle_puback  # type: ignore[method-assign]  # noqa: SLF001
        self._client = c

    # --- buffered socket I/O under paho -----------------------------------------------------

    def _buffer_send(self, buf) -> int:
        sock = self._client._sock  # noqa: SLF001
        if sock is None:
            raise ConnectionError("the socket is closed")
        if self._direct:  # DISCONNECT: paho closes the socket as soon as it is written
            try:
                return sock.send(buf)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError) as e:
                raise BlockingIOError() from e
        self._wbuf += buf
        return len(buf)

    def _flush(self) -> None:
        """Give buffered bytes to the socket (as many as it takes now; the rest when it is writable)."""
        if self._corked or not self._wbuf:
            return
        sock = self._client._sock  # noqa: SLF001
        if sock is None:
            self._wbuf.clear()
            return
        try:
            n = sock.send(self._wbuf)
        except _WOULD_BLOCK:
            return
        except OSError as e:
            log.debug("MQTT send failed: %s", e)
            self._wbuf.clear()
            self._client._sock_close()  # noqa: SLF001 - poll reports the lost connection
            return
        del self._wbuf[:n]
        self._client._last_msg_out = time.monotonic()  # noqa: SLF001 - paho's keepalive clock

    def _buffered_recv(self, bufsize: int) -> bytes:
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            sock = self._client._sock  # noqa: SLF001
            if sock is None:
                raise ConnectionError("the socket is closed")
            try:
                buf = sock.recv(READ_CHUNK)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError) as e:
                raise BlockingIOError() from e
            if not buf:
                return buf  # end of stream: paho reports the lost connection
            self._rbuf, pos = buf, 0
        end = min(pos + bufsize, len(buf))
        self._rpos = end
        return buf[pos:end]

    def _handle_puback(self, cmd: Literal["PUBACK", "PUBCOMP"]) -> MQTTErrorCode:
        """A PUBACK of one of our own PUBLISHes becomes a Published event here; the rest go to paho."""
        if cmd == "PUBACK":
            packet = self._client._in_packet["packet"]  # noqa: SLF001 - variable header and properties
            if len(packet) >= 2:
                mid = (packet[0] << 8) | packet[1]
                if mid in self._fast:
                    self._fast.discard(mid)
                    self._acked.add(mid)
                    code = packet[2] if len(packet) > 2 else 0
                    if code < 0x80:
                        self._events.append(Published(mid, True, "Success"))
                    else:
                        self._events.append(Published(mid, False, str(ReasonCode(PacketTypes.PUBACK, identifier=code))))
                    return MQTTErrorCode.MQTT_ERR_SUCCESS
        return self._paho_puback(cmd)

    @contextmanager
    def corked(self):
        """Within the block, packets paho writes (publishes, acks) are collected and go to the
        socket together when it ends."""
        self._corked += 1
        try:
            yield self
        finally:
            self._corked -= 1
            self._flush()

    # --- paho callbacks: hand off only ---------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._events.append(ConnectRefused(str(reason_code)))
            return
        self.connected = True
        receive_max = getattr(properties, "ReceiveMaximum", None) if properties is not None else None
        self.receive_maximum = int(receive_max) if receive_max else MAX_RECEIVE
        self._events.append(Connected(bool(flags.session_present), self.receive_maximum))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected = False
        self._events.append(Disconnected(str(reason_code)))

    def _on_message(self, client, userdata, message) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:  # MQTT requires UTF-8; a broker that passes on another is not trusted
            topic = INVALID_TOPIC  # no space's topic: dropped as junk, and still acknowledged
        self._events.append(Incoming(topic, bytes(message.payload), message.qos, bool(message.retain), message.mid))

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._acked.add(mid)
        self._events.append(Published(mid, not reason_code.is_failure, str(reason_code)))

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self._events.append(Subscribed(mid, tuple(rc.value for rc in reason_codes)))

    # --- the owner's calls --------------------------------------------------------------------

    def open(self) -> None:
        """Connect (TCP, TLS handshake) and send CONNECT; CONNACK arrives through :meth:`poll`.

        Raises ConnectFailed for an unreachable broker or a TLS failure.
        """
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.params.session_expiry
        try:
            self._client.connect(self.params.host, self.params.port, keepalive=self.params.keepalive,
                                 clean_start=self.params.clean_start, properties=props)
        except ssl.SSLCertVerificationError as e:
            raise ConnectFailed(f"the broker's certificate was not accepted ({e.verify_message})") from None
        except (OSError, ssl.SSLError, ValueError) as e:
            raise ConnectFailed(f"{type(e).__name__}: {e}") from None
        _no_delay(self._client.socket())
        self._flush()

    def poll(self, timeout: float) -> list:
        """Wait up to ``timeout`` for network traffic or a wake-up, process it, return the events."""
        c = self._client
        sock = c.socket()
        rlist: list[Any] = [self._waker] if self._waker else []
        if sock is not None and not self.closed:
            self._flush()
            rlist.append(sock)
            wlist = [sock] if (self._wbuf or c.want_write()) else []
            pending = self._rpos < len(self._rbuf) or (sock.pending() if hasattr(sock, "pending") else 0)
            try:
                readable, writable, _ = select.select(rlist, wlist, [], 0 if (pending or self._events) else timeout)
            except (OSError, ValueError):
                readable, writable = [sock], []
            if sock in readable or pending:
                c.loop_read()  # one packet unless paho tracks messages of its own: the rest below
                while self._rpos < len(self._rbuf) and c.socket() is not None:
                    c.loop_read()
            if c.socket() is not None and (sock in writable or c.want_write()):
                c.loop_write()
            if c.socket() is not None:
                c.loop_misc()
            self._flush()
            if c.socket() is None and self.connected:
                self.connected = False
                self._events.append(Disconnected("connection lost"))
        elif not self._events:
            select.select(rlist, [], [], timeout) if rlist else time.sleep(timeout)
        if self._waker is not None:
            self._waker.drain()
        events = list(self._events)
        self._events.clear()
        return events

    @property
    def socket_open(self) -> bool:
        return self._client.socket() is not None

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> int:
        """Queue one PUBLISH (written at once when the socket takes it, or at the end of a
        :meth:`corked` block); returns its message id."""
        c = self._client
        if (qos == 1 and self.connected and c._sock is not None and isinstance(payload, bytes)  # noqa: SLF001
                and topic and "+" not in topic and "#" not in topic):
            mid = c._mid_generate()  # noqa: SLF001 - shared with paho's own packets, so ids never clash
            name = topic.encode("utf-8")
            self._wbuf += b"".join((_PUBLISH_QOS1_RETAIN if retain else _PUBLISH_QOS1,
                                    _varint(5 + len(name) + len(payload)), len(name).to_bytes(2, "big"), name,
                                    mid.to_bytes(2, "big"), b"\x00", payload))
            self._fast.add(mid)
            self._flush()
            return mid
        info = c.publish(topic, payload, qos=qos, retain=retain)
        self._flush()
        return info.mid

    def subscribe(self, filters: list[str], qos: int = 1) -> int | None:
        """Subscribe with retain-as-published (so a receiver can tell retained state from streams) and
        no-local (a node never needs its own messages back). The packet's id, None when not connected."""
        opts = SubscribeOptions(qos=qos, noLocal=True, retainAsPublished=True,
                                retainHandling=SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE)
        _, mid = self._client.subscribe([(f, opts) for f in filters])
        self._flush()
        return mid

    def ack(self, mid: int, qos: int = 1) -> None:
        if qos > 0 and self._client.socket() is not None:
            self._client.ack(mid, qos)
            self._flush()

    def wait_for_publish(self, mid: int, timeout: float) -> bool:
        """Run the connection until ``mid`` is acknowledged or ``timeout`` passes (events are kept)."""
        deadline = time.monotonic() + timeout
        kept = []
        while mid not in self._acked:
            left = deadline - time.monotonic()
            if left <= 0 or not self.socket_open:
                break
            kept.extend(self.poll(min(left, 0.1)))
        self._events.extendleft(reversed(kept))
        return mid in self._acked

    def forget_acked(self, mids) -> None:
        self._acked.difference_update(mids)

    def disconnect(self) -> None:
        """A clean DISCONNECT (the broker does not publish the Will)."""
        if self._client.socket() is not None:
            try:
                self._flush_all(1.0)
                self._direct = True
                self._client.disconnect()
            except OSError:
                pass

    def _flush_all(self, timeout: float) -> None:
        """Flush until the buffer is empty, the socket is gone, or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while self._wbuf and self._client._sock is not None and time.monotonic() < deadline:  # noqa: SLF001
            self._flush()
            if self._wbuf and self._client._sock is not None:  # noqa: SLF001
                select.select([], [self._client._sock], [], max(0.0, deadline - time.monotonic()))  # noqa: SLF001

    def close(self) -> None:
        """Drop the socket without a DISCONNECT (as a crash would: the broker publishes the Will)."""
        if self.closed:
            return
        self.closed = True
        self.connected = False
        try:
            self._client._sock_close()  # noqa: SLF001 - paho has no public "drop the socket" call
        except OSError:
            pass
        self._client.on_disconnect = None


_PUBLISH_QOS1 = bytes((0x32,))
_PUBLISH_QOS1_RETAIN = bytes((0x33,))


def _varint(n: int) -> bytes:
    """MQTT's Variable Byte Integer (a packet's remaining length)."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _no_delay(sock) -> None:
    """Small MQTT packets go out at once: without TCP_NODELAY a PUBLISH written while our previous
    PUBACK is unacknowledged waits for the peer's delayed ACK (about 40 ms per message exchange)."""
    raw = getattr(sock, "_sock", sock)  # paho may wrap the socket
    try:
        if raw is not None and raw.family in (socket.AF_INET, socket.AF_INET6):
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass
