"""The node-to-node data channel over real sockets on 127.0.0.1: who is at the other end is proven,
and a frame changed, repeated, reordered or oversized on the way ends the channel with a clear error."""

from __future__ import annotations

import hashlib
import os
import queue
import socket
import struct
import threading
import tracemalloc
from contextlib import contextmanager

import pytest

from appliance.crypto.keys import SigningKey
from appliance.errors import ChannelClosed, ChannelRefused, ChannelTampered, ChannelTimeout, FrameTooLarge
from appliance.net.channel import FRAME_DATA, MAX_PAYLOAD, ChannelServer, connect

HEADER = struct.Struct(">IB")
MiB = 1024 * 1024


@pytest.fixture
def alice():
    return SigningKey.generate()


@pytest.fixture
def bob():
    return SigningKey.generate()


@contextmanager
def serving(key, handler, **kw):
    server = ChannelServer(key, handler, **kw)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def collecting(into: queue.Queue):
    """A handler that puts each frame it receives into ``into``, then the error that ended it."""
    def handler(channel):
        into.put(("peer", channel.peer_did))
        while True:
            try:
                into.put(channel.recv(timeout=10))
            except (ChannelClosed, ChannelTimeout) as exc:
                into.put(exc)
                return
    return handler


class Impostor(SigningKey):
    """Claims another node's did but signs with its own key."""

    def __init__(self, claimed: str) -> None:
        super().__init__(SigningKey.generate()._key)
        self._claimed = claimed

    @property
    def did(self) -> str:
        return self._claimed


class Splice:
    """A relay between one client and a server that hands the client's frames after the handshake
    (its first two units, HELLO and PROOF) to ``edit(frame) -> frames to forward``."""

    def __init__(self, target_port: int, edit) -> None:
        self._target, self._edit = target_port, edit
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._socks: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._run, name="splice")]
        self._threads[0].start()

    def _run(self) -> None:
        client, _ = self._listener.accept()
        upstream = socket.create_connection(("127.0.0.1", self._target))
        self._socks += [client, upstream]
        back = threading.Thread(target=self._copy, args=(upstream, client), name="splice-back")
        self._threads.append(back)
        back.start()
        try:
            for _ in range(2):
                upstream.sendall(self._unit(client))
            while True:
                for frame in self._edit(self._unit(client)):
                    upstream.sendall(frame)
        except (OSError, EOFError):
            pass

    @staticmethod
    def _unit(sock: socket.socket) -> bytes:
        head = _exactly(sock, HEADER.size)
        return head + _exactly(sock, HEADER.unpack(head)[0])

    @staticmethod
    def _copy(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        for s in self._socks + [self._listener]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self._threads:
            t.join(5)


def _exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


@contextmanager
def spliced(server, edit):
    splice = Splice(server.port, edit)
    try:
        yield splice
    finally:
        splice.close()


def _next(q: queue.Queue):
    return q.get(timeout=10)


# --- who is at the other end ------------------------------------------------------------------


def test_both_sides_learn_the_others_did(alice, bob):
    got = queue.Queue()
    with serving(bob, collecting(got)) as server:
        with connect("127.0.0.1", server.port, alice, expect_did=bob.did) as channel:
            assert channel.peer_did == bob.did
            assert _next(got) == ("peer", alice.did)
            channel.send_json({"type": "hello", "n": 1})
            assert _next(got) == (1, b'{"type":"hello","n":1}')
        closed = _next(got)
        assert isinstance(closed, ChannelClosed) and "the peer closed it" in str(closed)


def test_a_different_node_than_expected_is_refused(alice, bob, english):
    other = SigningKey.generate()
    with serving(bob, lambda ch: None) as server:
        with pytest.raises(ChannelRefused) as refused:
            connect("127.0.0.1", server.port, alice, expect_did=other.did)
    assert f"it is {bob.did}, not the expected node {other.did}" in str(refused.value)
    assert refused.value.exit_code == 155
    assert "而不是预期的节点" in refused.value.message("zh_CN")


def test_a_client_signing_with_a_key_not_of_its_did_is_refused(alice, bob):
    got = queue.Queue()
    with serving(bob, collecting(got)) as server:
        with pytest.raises(ChannelRefused, match="could not verify this node's identity"):
            connect("127.0.0.1", server.port, Impostor(alice.did), expect_did=bob.did)
    assert got.empty()  # the handler never ran


def test_a_server_signing_with_a_key_not_of_its_did_is_refused(alice, bob):
    with serving(Impostor(bob.did), lambda ch: None) as server:
        with pytest.raises(ChannelRefused, match="proof of identity does not match its id"):
            connect("127.0.0.1", server.port, alice, expect_did=bob.did)


def test_a_server_refuses_a_node_it_does_not_allow(alice, bob):
    with serving(bob, lambda ch: None, allow=lambda did: did != alice.did) as server:
        with pytest.raises(ChannelRefused, match="does not accept data connections from this node"):
            connect("127.0.0.1", server.port, alice)
        with connect("127.0.0.1", server.port, SigningKey.generate()) as channel:
            assert channel.peer_did == bob.did


def test_the_cipher_suites_must_match(alice, bob):
    with serving(bob, lambda ch: None, suite="chacha20-poly1305") as server:
        with pytest.raises(ChannelRefused, match="another cipher suite"):
            connect("127.0.0.1", server.port, alice)


# --- frames changed on the way ---------------------------------------------------------------


def _flip(frame: bytes) -> list[bytes]:
    changed = bytearray(frame)
    changed[-20] ^= 0x01
    return [bytes(changed)]


def _run_edited(alice, bob, edit, payloads):
    got = queue.Queue()
    with serving(bob, collecting(got)) as server, spliced(server, edit) as splice:
        with connect("127.0.0.1", splice.port, alice, expect_did=bob.did) as channel:
            assert _next(got) == ("peer", alice.did)
            for p in payloads:
                channel.send(FRAME_DATA, p)
            frames = []
            while not isinstance(item := _next(got), Exception):
                frames.append(item)
    return frames, item


def test_a_flipped_byte_closes_the_channel(alice, bob):
    count = iter(range(100))
    frames, error = _run_edited(alice, bob, lambda f: _flip(f) if next(count) == 1 else [f],
                                [b"one" * 100, b"two" * 100, b"three"])
    assert frames == [(FRAME_DATA, b"one" * 100)]
    assert isinstance(error, ChannelTampered)
    assert "frame number 1" in str(error) and error.exit_code == 158


def test_a_replayed_frame_closes_the_channel(alice, bob):
    frames, error = _run_edited(alice, bob, lambda f: [f, f], [b"pay 100 yuan"])
    assert frames == [(FRAME_DATA, b"pay 100 yuan")]
    assert isinstance(error, ChannelTampered) and "frame number 1" in str(error)


def test_a_reordered_frame_closes_the_channel(alice, bob):
    held = []

    def swap(frame):
        if not held:
            held.append(frame)
            return []
        return [frame, held.pop()]

    frames, error = _run_edited(alice, bob, swap, [b"first", b"second"])
    assert frames == []
    assert isinstance(error, ChannelTampered) and "frame number 0" in str(error)


def test_an_over_long_frame_length_is_refused_without_allocating_it(alice, bob):
    huge = HEADER.pack(0xFFFF_FFF0, FRAME_DATA) + b"\0" * 32
    tracemalloc.start()
    try:
        frames, error = _run_edited(alice, bob, lambda f: [huge], [b"x"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frames == []
    assert isinstance(error, FrameTooLarge) and error.exit_code == 159
    assert str(0xFFFF_FFF0) in str(error)
    assert peak < 64 * MiB


def test_an_over_long_handshake_message_is_refused(alice):
    listener = socket.create_server(("127.0.0.1", 0))

    def answer():
        conn, _ = listener.accept()
        with conn:
            conn.sendall(HEADER.pack(0xFFFF_FFFF, 0xF1))
            conn.recv(4096)

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        with pytest.raises(FrameTooLarge, match="more than the limit of 1024 bytes"):
            connect("127.0.0.1", listener.getsockname()[1], alice, timeout=5)
    finally:
        thread.join(5)
        listener.close()


# --- volume, timeouts and the server's life ---------------------------------------------------


def test_large_payloads_arrive_byte_identical(alice, bob):
    data = os.urandom(64 * MiB)
    seen = queue.Queue()

    def digest(channel):
        h, size = hashlib.sha256(), 0
        while True:
            kind, payload = channel.recv(timeout=30)
            if kind != FRAME_DATA:
                break
            h.update(payload)
            size += len(payload)
        seen.put((size, h.hexdigest()))
        channel.send_json({"size": size, "sha256": h.hexdigest()})

    with serving(bob, digest) as server, connect("127.0.0.1", server.port, alice, expect_did=bob.did) as channel:
        view = memoryview(data)
        for start in range(0, len(data), MiB):
            channel.send(FRAME_DATA, view[start:start + MiB])
        channel.send_json({"done": True})
        answer = channel.recv_json(timeout=30)
    expected = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert answer == expected
    assert _next(seen) == (expected["size"], expected["sha256"])


def test_a_frame_above_the_limit_is_not_sent(alice, bob):
    with serving(bob, lambda ch: ch.recv(5)) as server, connect("127.0.0.1", server.port, alice) as channel:
        with pytest.raises(ValueError):
            channel.send(FRAME_DATA, bytes(MAX_PAYLOAD + 1))
        channel.send(FRAME_DATA, bytes(MAX_PAYLOAD))


def test_a_receive_timeout_leaves_the_channel_usable(alice, bob):
    go = threading.Event()

    def late(channel):
        go.wait(10)
        channel.send(FRAME_DATA, b"late")

    with serving(bob, late) as server, connect("127.0.0.1", server.port, alice) as channel:
        with pytest.raises(ChannelTimeout):
            channel.recv(timeout=0.2)
        go.set()
        assert channel.recv(timeout=10) == (FRAME_DATA, b"late")


def test_a_handler_exception_does_not_kill_the_server(alice, bob, observed_errors):
    calls = []

    def handler(channel):
        calls.append(channel.peer_did)
        if len(calls) == 1:
            raise RuntimeError("a bug in the handler")
        channel.send_json({"ok": True})

    with serving(bob, handler) as server:
        with connect("127.0.0.1", server.port, alice) as first:
            with pytest.raises(ChannelClosed):
                first.recv(timeout=10)
        with connect("127.0.0.1", server.port, alice) as second:
            assert second.recv_json(timeout=10) == {"ok": True}
    assert len(calls) == 2
    assert any("handler of a data connection" in r.getMessage() for r in observed_errors)


def test_stop_closes_open_channels_and_joins_their_threads(alice, bob):
    started = threading.Event()

    def wait_forever(channel):
        started.set()
        channel.recv()

    server = ChannelServer(bob, wait_forever)
    server.start()
    try:
        channel = connect("127.0.0.1", server.port, alice)
        idle = socket.create_connection(("127.0.0.1", server.port))  # never finishes its handshake
        assert started.wait(10)
    finally:
        server.stop()
    try:
        assert not [t for t in threading.enumerate() if t.name.startswith("channel-")]
        with pytest.raises(ChannelClosed, match="the peer closed it"):
            channel.recv(timeout=10)
    finally:
        channel.close()
        idle.close()
