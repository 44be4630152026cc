"""An authenticated, encrypted, framed channel over TCP between two node keys.

Nothing is trusted because of an address: each side proves its did:key in the handshake, and every
frame after it is sealed with a key only the two ends know.

Handshake (each message a plaintext unit ``[4-byte length][1-byte type][body]``, at most
:data:`MAX_HANDSHAKE` bytes of body)::

    client -> server  HELLO  version, cipher suite, 32-byte nonce, ephemeral X25519 key, did
    server -> client  HELLO  (the same for the server), PROOF  Ed25519 signature
    client -> server  PROOF  Ed25519 signature
    server -> client  OK     (or REFUSE with a short code, at any step, from either side)

The transcript hash is SHA-256 over both hellos in order; each side signs it with its node key
under its own label (``client``/``server``, so a proof cannot be reflected back) and checks the
other's signature against the public key inside the did the other's hello names. The keys, one
per direction, come from HKDF-SHA256 over the X25519 shared secret with the transcript hash as
salt, so a man in the middle who swaps the ephemeral keys breaks the signatures.

Frames after the handshake: ``[4-byte length][1-byte kind][ciphertext + 16-byte tag]``, the
5-byte header as associated data, the nonce a 96-bit counter per direction (4 zero bytes and the
frame number, big-endian), so a changed, replayed, reordered or dropped frame fails
authentication and closes the channel (:class:`ChannelTampered`). A length over
:data:`MAX_PAYLOAD` + tag is refused from the header, before anything is allocated
(:class:`FrameTooLarge`). :meth:`Channel.close` sends an encrypted CLOSE frame (kind 0), so the
other side can tell an orderly end from a cut connection.

The AEAD: AES-256-GCM, chosen by ``python -m bench transfer`` (2 vCPU x86-64 with AES-NI/VAES,
loaded by other work; 1 GiB in 1 MiB frames over loopback, receiver in another process): through
the channel AES-256-GCM 0.90 GB/s against ChaCha20-Poly1305 0.80 GB/s (plain TCP 2.5 GB/s, TLS 1.3
0.66 GB/s); sealing alone on one core AES-256-GCM 4.3 GB/s against 1.55 GB/s. Either fills a
1 Gbit/s LAN (0.125 GB/s), but AES-GCM costs about a third of the CPU per byte, which the node
needs for reading and hashing the data (SHA-256 ran at 0.5-0.8 GB/s here, slower than the channel).
ChaCha20-Poly1305 stays as a second suite (``suite=``) for CPUs without AES instructions (small ARM
boards), where it is the faster one. Both ends must use the same suite: the hello names it and a
mismatch is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from appliance.crypto.keys import MAX_DID, SigningKey, public_key_from_did, verify
from appliance.errors import (
    ApplianceError,
    BadSignature,
    ChannelClosed,
    ChannelRefused,
    ChannelTampered,
    ChannelTimeout,
    FrameTooLarge,
    LocalText,
    MalformedDid,
    MalformedMessage,
    shown,
)

log = logging.getLogger(__name__)

VERSION = 1
FRAME_CLOSE = 0
"""Control: the sender closes the channel (sent by :meth:`Channel.close`)."""
FRAME_JSON = 1
FRAME_DATA = 2
MAX_KIND = 0xEF
"""Kinds 1..MAX_KIND are the caller's; 0 and 0xF0..0xFF belong to the channel."""
MAX_PAYLOAD = 4 * 1024 * 1024
TAG_SIZE = 16
MAX_HANDSHAKE = 1024
HEADER = struct.Struct(">IB")

SUITES = {"aes-256-gcm": (1, AESGCM), "chacha20-poly1305": (2, ChaCha20Poly1305)}
SUITE = "aes-256-gcm"

_HELLO, _PROOF, _OK, _REFUSE = 0xF1, 0xF2, 0xF3, 0xF4
_HELLO_FIXED = struct.Struct(">BB32s32s")  # version, suite, nonce, X25519 public key; the did follows
_CONTEXT = b"dsnode-channel/1"
_CLIENT, _SERVER = _CONTEXT + b" client proof\0", _CONTEXT + b" server proof\0"
_REFUSALS = {  # the codes a peer sends; each side words them in its own language
    "version": "delivery.reason.peer_other_version", "bad_hello": "delivery.reason.peer_rejected_hello",
    "bad_signature": "delivery.reason.peer_rejected_proof", "unexpected_peer": "delivery.reason.peer_expected_other",
    "not_allowed": "delivery.reason.peer_not_allowing",
}


def _reason(key: str, *args: object) -> LocalText:
    return LocalText(f"delivery.reason.{key}", *args)


class Channel:
    """One connection, either side, after the handshake. ``peer_did`` is proven by it.

    One thread may send while another receives; :meth:`close` may be called from any thread and
    wakes a blocked :meth:`recv`.
    """

    def __init__(self, sock: socket.socket, peer_did: str, send_key: bytes, recv_key: bytes, suite: str) -> None:
        aead = SUITES[suite][1]
        self.peer_did = peer_did
        self._sock = sock
        self._seal, self._open = aead(send_key), aead(recv_key)
        self._sent = self._received = 0
        self._send_lock, self._recv_lock = threading.Lock(), threading.Lock()
        self._out = bytearray()
        self._head, self._body = bytearray(HEADER.size), bytearray()
        self._have, self._length, self._kind = 0, None, 0
        self._closed = False
        self._ended: ChannelClosed | None = None  # why recv cannot go on
        self._send_failed: ChannelClosed | None = None
        self._mutex = threading.Lock()  # guards the counts below: the socket is closed when nobody uses it
        self._users, self._fd_open = 0, True

    def send(self, kind: int, payload: bytes) -> None:
        """Send one frame of ``kind`` (1..MAX_KIND) with at most MAX_PAYLOAD bytes."""
        if not 0 < kind <= MAX_KIND:
            raise ValueError(f"frame kind must be 1..{MAX_KIND}, not {kind}")
        self._send_frame(kind, payload)

    def send_json(self, obj: object) -> None:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        self.send(FRAME_JSON, text.encode("utf-8"))

    def recv(self, timeout: float | None = None) -> tuple[int, bytes]:
        """The next frame ``(kind, payload)``. ChannelClosed when the channel ends (orderly or not,
        ChannelTampered and FrameTooLarge being kinds of it); ChannelTimeout if nothing whole came
        within ``timeout`` seconds (the channel stays usable: a partial frame is kept)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._recv_lock, self._io():
            if self._ended is not None:
                raise self._ended
            try:
                kind, body = self._read_frame(deadline, timeout)
                nonce = _nonce(self._received)
                try:
                    payload = self._open.decrypt(nonce, body, HEADER.pack(len(body), kind))
                except InvalidTag:
                    raise ChannelTampered(self.peer_did, _reason("frame_not_authentic", self._received)) from None
                finally:
                    body.release()
                self._received += 1
                if kind == FRAME_CLOSE:
                    raise ChannelClosed(self.peer_did, _reason("closed_by_peer"))
                return kind, payload
            except ChannelClosed as exc:
                self._ended = exc
                self._shutdown()
                raise

    def recv_json(self, timeout: float | None = None) -> dict:
        """The next frame, which must be a FRAME_JSON holding an object (MalformedMessage if not)."""
        kind, payload = self.recv(timeout)
        if kind != FRAME_JSON:
            raise MalformedMessage(_reason("frame_not_json", kind, self.peer_did))
        try:
            value = _DECODER.decode(payload.decode("utf-8"))
        except (ValueError, RecursionError):
            raise MalformedMessage(_reason("json_unreadable", self.peer_did)) from None
        if not isinstance(value, dict):
            raise MalformedMessage(_reason("json_not_object", self.peer_did))
        return value

    def close(self) -> None:
        """Send CLOSE (unless a send is in progress) and shut the connection; idempotent. A
        :meth:`recv` or :meth:`send` blocked in another thread ends with ChannelClosed."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
        if self._send_lock.acquire(blocking=False):
            try:
                frame = self._seal_frame(FRAME_CLOSE, b"")
                self._sock.send(frame, getattr(socket, "MSG_DONTWAIT", 0))
            except OSError:
                pass
            finally:
                self._send_lock.release()
        with self._mutex:
            self._shutdown()
            if self._users == 0 and self._fd_open:
                self._fd_open = False
                self._sock.close()

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Channel({self.peer_did})"

    # --- frames ---

    def _send_frame(self, kind: int, payload: bytes) -> None:
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"a frame holds at most {MAX_PAYLOAD} bytes, not {len(payload)}")
        with self._send_lock, self._io():
            if self._send_failed is not None:
                raise self._send_failed
            frame = self._seal_frame(kind, payload)
            try:
                self._sock.sendall(frame)
            except OSError as exc:
                reason = _reason("closed_here") if self._closed else _reason("connection_failed", str(exc))
                self._send_failed = ChannelClosed(self.peer_did, reason)
                self._shutdown()
                raise self._send_failed from None

    @contextmanager
    def _io(self) -> Iterator[None]:
        """Around a use of the socket: after :meth:`close`, the last user closes it."""
        with self._mutex:
            if self._closed:
                raise ChannelClosed(self.peer_did, _reason("closed_here"))
            self._users += 1
        try:
            yield
        finally:
            with self._mutex:
                self._users -= 1
                if self._closed and self._users == 0 and self._fd_open:
                    self._fd_open = False
                    self._sock.close()

    def _seal_frame(self, kind: int, payload: bytes) -> memoryview:
        """The next frame, sealed in a buffer reused between frames (the send lock is held)."""
        size = HEADER.size + len(payload) + TAG_SIZE
        if len(self._out) < size:
            self._out = bytearray(size)
        out = memoryview(self._out)[:size]
        header = HEADER.pack(len(payload) + TAG_SIZE, kind)
        out[:HEADER.size] = header
        self._seal.encrypt_into(_nonce(self._sent), payload, header, out[HEADER.size:])
        self._sent += 1
        return out

    def _read_frame(self, deadline: float | None, timeout: float | None) -> tuple[int, memoryview]:
        if self._length is None:
            self._fill(memoryview(self._head), deadline, timeout)
            length, kind = HEADER.unpack(self._head)
            if length > MAX_PAYLOAD + TAG_SIZE:
                raise FrameTooLarge(self.peer_did, length, MAX_PAYLOAD + TAG_SIZE)
            if length < TAG_SIZE:  # cannot even hold the tag
                raise ChannelTampered(self.peer_did, _reason("frame_not_authentic", self._received))
            self._have, self._length, self._kind = 0, length, kind
            if len(self._body) < length:
                self._body = bytearray(length)
        body = memoryview(self._body)[:self._length]
        self._fill(body, deadline, timeout)
        self._have, self._length = 0, None
        return self._kind, body

    def _fill(self, view: memoryview, deadline: float | None, timeout: float | None) -> None:
        """Read into ``view`` from ``self._have`` on; what arrived stays counted if time runs out."""
        while self._have < len(view):
            if deadline is not None and not _readable(self._sock, deadline - time.monotonic()):
                raise ChannelTimeout(self.peer_did, timeout)
            try:
                n = self._sock.recv_into(view[self._have:])
            except OSError as exc:
                reason = _reason("closed_here") if self._closed else _reason("connection_failed", str(exc))
                raise ChannelClosed(self.peer_did, reason) from None
            if n == 0:
                raise ChannelClosed(self.peer_did, _reason("closed_here" if self._closed else "ended_unexpectedly"))
            self._have += n

    def _shutdown(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _nonce(counter: int) -> bytes:
    return b"\0\0\0\0" + counter.to_bytes(8, "big")


def _readable(sock: socket.socket, seconds: float) -> bool:
    if seconds <= 0:
        seconds = 0
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(seconds * 1000))
    return bool(select.select([sock], [], [], seconds)[0])


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _bounded_int(digits: str) -> int:
    if len(digits) > 40:
        raise ValueError("number too long")
    return int(digits)


_DECODER = json.JSONDecoder(parse_int=_bounded_int, parse_constant=_no_constant)


# --- handshake -------------------------------------------------------------------------------


class _Handshake:
    """One side's part of the handshake on a connected socket (with a timeout set)."""

    def __init__(self, sock: socket.socket, key: SigningKey, where: str, timeout: float, suite: str) -> None:
        if suite not in SUITES:
            raise ValueError(f"unknown cipher suite {suite!r}; choose one of {sorted(SUITES)}")
        self.sock, self.key, self.where, self.timeout, self.suite = sock, key, where, timeout, suite
        self._ephemeral = X25519PrivateKey.generate()
        eph = self._ephemeral.public_key().public_bytes_raw()
        self.hello = _HELLO_FIXED.pack(VERSION, SUITES[suite][0], os.urandom(32), eph) + key.did.encode("ascii")

    def client(self, expect_did: str | None) -> Channel:
        self._put(_HELLO, self.hello)
        theirs, did = self._their_hello()
        digest = _transcript(self.hello, theirs)
        proof = self._get(_PROOF)
        if expect_did is not None and did != expect_did:
            self._refuse("unexpected_peer", _reason("unexpected_peer", did, expect_did))
        self._check_proof(did, _SERVER + digest, proof)
        self._put(_PROOF, self.key.sign(_CLIENT + digest))
        self._get(_OK)
        send_key, recv_key = self._keys(theirs, digest)
        return Channel(self.sock, did, send_key, recv_key, self.suite)

    def server(self, allow: Callable[[str], bool]) -> Channel:
        theirs, did = self._their_hello()
        digest = _transcript(theirs, self.hello)
        self._put(_HELLO, self.hello, _PROOF, self.key.sign(_SERVER + digest))
        self._check_proof(did, _CLIENT + digest, self._get(_PROOF))
        if not allow(did):
            self._refuse("not_allowed", _reason("not_allowed_here", did))
        self._put(_OK, b"")
        recv_key, send_key = self._keys(theirs, digest)
        return Channel(self.sock, did, send_key, recv_key, self.suite)

    def _their_hello(self) -> tuple[bytes, str]:
        body = self._get(_HELLO)
        if len(body) < _HELLO_FIXED.size:
            self._refuse("bad_hello", _reason("hello_unreadable"))
        version, suite, _nonce_, _eph = _HELLO_FIXED.unpack_from(body)
        if version != VERSION:
            self._refuse("version", _reason("other_version", version, VERSION))
        if suite != SUITES[self.suite][0]:
            self._refuse("version", _reason("other_suite", suite, self.suite))
        raw = body[_HELLO_FIXED.size:]
        try:
            did = raw.decode("ascii") if len(raw) <= MAX_DID else ""
            public_key_from_did(did)
        except (UnicodeDecodeError, MalformedDid):
            self._refuse("bad_hello", _reason("hello_unreadable"))
        return body, did

    def _check_proof(self, did: str, signed: bytes, proof: bytes) -> None:
        try:
            verify(public_key_from_did(did), signed, proof, "handshake")
        except BadSignature:
            self._refuse("bad_signature", _reason("proof_invalid", did))

    def _keys(self, their_hello: bytes, digest: bytes) -> tuple[bytes, bytes]:
        """(client-to-server, server-to-client) keys."""
        eph = _HELLO_FIXED.unpack_from(their_hello)[3]
        try:
            shared = self._ephemeral.exchange(X25519PublicKey.from_public_bytes(eph))
        except ValueError:  # a low-order point: the shared secret would be all zeros
            self._refuse("bad_hello", _reason("hello_unreadable"))
        okm = HKDF(hashes.SHA256(), 64, salt=digest, info=_CONTEXT + b" keys").derive(shared)
        return okm[:32], okm[32:]

    def _refuse(self, code: str, reason: LocalText) -> None:
        try:
            self._put(_REFUSE, code.encode("ascii"))
        except ApplianceError:
            pass
        raise ChannelRefused(self.where, reason)

    def _put(self, *parts: int | bytes) -> None:
        out = bytearray()
        for kind, body in zip(parts[::2], parts[1::2], strict=True):
            out += HEADER.pack(len(body), kind) + body
        try:
            self.sock.sendall(out)
        except TimeoutError:
            raise ChannelTimeout(self.where, self.timeout) from None
        except OSError as exc:
            raise ChannelRefused(self.where, _reason("connection_failed", str(exc))) from None

    def _get(self, wanted: int) -> bytes:
        length, kind = HEADER.unpack(self._exactly(HEADER.size))
        if length > MAX_HANDSHAKE:
            raise FrameTooLarge(self.where, length, MAX_HANDSHAKE)
        body = self._exactly(length)
        if kind == _REFUSE:
            code = body.decode("ascii", "replace")
            reason = _REFUSALS.get(code)
            raise ChannelRefused(self.where, LocalText(reason) if reason else _reason("peer_refused", shown(code)))
        if kind != wanted:
            self._refuse("bad_hello", _reason("handshake_out_of_order", kind))
        return body

    def _exactly(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            try:
                chunk = self.sock.recv(n - len(data))
            except TimeoutError:
                raise ChannelTimeout(self.where, self.timeout) from None
            except OSError as exc:
                raise ChannelRefused(self.where, _reason("connection_failed", str(exc))) from None
            if not chunk:
                raise ChannelRefused(self.where, _reason("handshake_cut"))
            data += chunk
        return bytes(data)


def _transcript(client_hello: bytes, server_hello: bytes) -> bytes:
    h = hashlib.sha256(_CONTEXT + b" transcript\0")
    for hello in (client_hello, server_hello):
        h.update(len(hello).to_bytes(4, "big") + hello)
    return h.digest()


def connect(host: str, port: int, key: SigningKey, *, expect_did: str | None = None, timeout: float = 10.0,
            suite: str = SUITE) -> Channel:
    """Open a channel to ``host:port`` as ``key``; ChannelRefused if the peer is not ``expect_did``
    (or fails its proof, or refuses this node), ChannelTimeout if the handshake takes longer than
    ``timeout`` seconds."""
    where = f"{host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        raise ChannelTimeout(where, timeout) from None
    except OSError as exc:
        raise ChannelRefused(where, _reason("connection_failed", str(exc))) from None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        channel = _Handshake(sock, key, where, timeout, suite).client(expect_did)
        sock.settimeout(None)
        return channel
    except BaseException:
        sock.close()
        raise


class ChannelServer:
    """Listens on ``host:port`` (0: a free port, see ``port`` after :meth:`start`); each accepted
    connection gets a thread that runs the handshake and then ``handler(channel)``, and closes the
    channel when the handler returns. A handler's exception is logged and ends only its connection."""

    def __init__(self, key: SigningKey, handler: Callable[[Channel], None], *, host: str = "127.0.0.1",
                 port: int = 0, allow: Callable[[str], bool] = lambda did: True, handshake_timeout: float = 10.0,
                 max_connections: int = 64, suite: str = SUITE) -> None:
        if suite not in SUITES:
            raise ValueError(f"unknown cipher suite {suite!r}; choose one of {sorted(SUITES)}")
        self._key, self._handler, self._allow = key, handler, allow
        self._host, self.port = host, port
        self._handshake_timeout, self._max, self._suite = handshake_timeout, max_connections, suite
        self._lock = threading.Lock()
        self._live: dict[threading.Thread, socket.socket | Channel] = {}
        self._listener: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._acceptor: threading.Thread | None = None
        self._stopping = False
        self._last_refusal_log = float("-inf")

    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        self._listener = socket.create_server((self._host, self.port), family=family)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._wake = socket.socketpair()
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"channel-server-{self.port}", daemon=True)
        self._acceptor.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, close every connection and join the threads (each up to ``timeout`` s)."""
        if self._acceptor is None:
            return
        self._stopping = True
        self._wake[1].send(b"x")
        self._acceptor.join(timeout)
        with self._lock:
            live = dict(self._live)
        for conn in live.values():
            if isinstance(conn, Channel):
                conn.close()
            else:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for thread in live:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the data connection thread %s did not end within %s s", thread.name, timeout)
        self._listener.close()
        for s in self._wake:
            s.close()
        self._acceptor = None

    def __enter__(self) -> ChannelServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stopping:
            ready, _, _ = select.select([self._listener, self._wake[0]], [], [])
            if self._wake[0] in ready:
                return
            try:
                conn, addr = self._listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue
            conn.setblocking(True)
            with self._lock:
                if len(self._live) >= self._max:
                    conn.close()
                    self._log_refusal("too many data connections (%d); one from %s was closed", self._max, addr[0])
                    continue
                thread = threading.Thread(target=self._serve, args=(conn, f"{addr[0]}:{addr[1]}"),
                                          name=f"channel-{self.port}-{addr[1]}", daemon=True)
                self._live[thread] = conn
            thread.start()

    def _serve(self, conn: socket.socket, where: str) -> None:
        me = threading.current_thread()
        try:
            try:
                conn.settimeout(self._handshake_timeout)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                channel = _Handshake(conn, self._key, where, self._handshake_timeout, self._suite).server(self._allow)
                conn.settimeout(None)
            except (ApplianceError, OSError) as exc:
                conn.close()
                self._log_refusal("a data connection from %s was refused: %s", where, exc)
                return
            with self._lock:
                if self._stopping:
                    channel.close()
                    return
                self._live[me] = channel
            try:
                self._handler(channel)
            except (ChannelTampered, FrameTooLarge) as exc:
                log.warning("the data connection with %s was broken off: %s", channel.peer_did, exc)
            except ChannelClosed as exc:
                log.info("the data connection with %s ended: %s", channel.peer_did, exc)
            except ApplianceError as exc:
                log.warning("the data connection with %s ended: %s", channel.peer_did, exc)
            except Exception:
                log.exception("the handler of a data connection with %s failed", channel.peer_did)
            finally:
                channel.close()
        finally:
            with self._lock:
                self._live.pop(me, None)

    def _log_refusal(self, message: str, *args: object) -> None:
        """A peer's junk logs at most one line every 10 seconds."""
        now = time.monotonic()
        if now - self._last_refusal_log >= 10.0:
            self._last_refusal_log = now
            log.warning(message, *args)
