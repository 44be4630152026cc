"""`appliance.net.mqtt` against a real mosquitto: its own QoS 1 PUBLISHes (written past paho) are
delivered and acknowledged, the outbox is marked sent through them, and the read-ahead buffer under
paho hands over every byte in order.

These lean on paho internals (see tests/unit/test_mqtt_paho_hooks.py); the first test here fails
at once, naming what to revisit, if they moved.
"""

from __future__ import annotations

import time

import paho.mqtt.client as paho
import pytest

from appliance.net import mqtt
from appliance.net.mqtt import BrokerParams, Connected, Incoming, MqttConnection, Published, Subscribed
from tests.integration.sync_helpers import eventually, queued, record_pings, send_pings

REVISIT = "paho changed: revisit appliance/net/mqtt.py (buffered socket I/O and hand-encoded QoS 1 PUBLISHes)"
TOPIC = "tds/v1/mqtt-test/stream"


@pytest.fixture
def connections(mosquitto):
    opened: list[MqttConnection] = []

    def connect(client_id: str) -> MqttConnection:
        conn = MqttConnection(BrokerParams(mosquitto.host, mosquitto.port, client_id=client_id, clean_start=True))
        opened.append(conn)
        conn.open()
        _until(conn, lambda e: isinstance(e, Connected), 1, what=f"{client_id} to connect")
        return conn

    yield connect
    for conn in opened:
        conn.close()


def _until(conn: MqttConnection, wanted, count: int, *, timeout: float = 20.0, what: str) -> list:
    """Poll ``conn`` until ``count`` events match ``wanted``; return them (in order)."""
    found: list = []
    deadline = time.monotonic() + timeout
    while len(found) < count:
        assert time.monotonic() < deadline, f"timed out waiting for {what} ({len(found)} of {count})"
        found += [e for e in conn.poll(0.1) if wanted(e)]
    return found


def test_the_hooks_are_in_place_on_a_live_connection(connections):
    conn = connections("hooks")
    client = conn._client  # noqa: SLF001 - what MqttConnection installed on paho
    assert client._sock is not None, f"paho keeps its socket elsewhere: {REVISIT}"  # noqa: SLF001
    assert client._sock_recv == conn._buffered_recv, REVISIT  # noqa: SLF001
    assert client._sock_send == conn._buffer_send, REVISIT  # noqa: SLF001
    assert client._handle_pubackcomp == conn._handle_puback, REVISIT  # noqa: SLF001


def test_a_publish_on_the_fast_path_is_delivered_and_acknowledged(connections):
    receiver, sender = connections("receiver"), connections("sender")
    receiver.subscribe([TOPIC])
    _until(receiver, lambda e: isinstance(e, Subscribed), 1, what="the subscription")

    mids = [sender.publish(TOPIC, f"message {i}".encode(), qos=1) for i in range(3)]
    assert set(mids) <= sender._fast, f"the QoS 1 PUBLISHes went through paho, not the fast path: {REVISIT}"  # noqa: SLF001
    assert not sender._client._out_messages, "paho tracks them too: their PUBACKs would be counted twice"  # noqa: SLF001

    acks = _until(sender, lambda e: isinstance(e, Published), 3, what="the broker's PUBACKs")
    assert [(a.mid, a.ok) for a in acks] == [(m, True) for m in mids]
    assert not sender._fast  # noqa: SLF001 - every one matched to its PUBACK
    got = _until(receiver, lambda e: isinstance(e, Incoming), 3, what="the messages")
    assert [(g.topic, g.payload, g.qos) for g in got] == [(TOPIC, f"message {i}".encode(), 1) for i in range(3)]
    for g in got:
        receiver.ack(g.mid, g.qos)


def test_many_messages_of_every_size_arrive_whole_and_in_order(connections):
    """Sizes from a few bytes to more than one read (64 KiB): packets straddle the read-ahead
    buffer's edges in every way, and each must come out whole, in the order it was sent."""
    receiver, sender = connections("reader"), connections("writer")
    receiver.subscribe([TOPIC])
    _until(receiver, lambda e: isinstance(e, Subscribed), 1, what="the subscription")
    sizes = [1, 7, 127, 128, 1000, 16384, mqtt.READ_CHUNK - 20, mqtt.READ_CHUNK + 3, 200_000]
    payloads = [i.to_bytes(4, "big") + bytes([i % 251]) * sizes[i % len(sizes)] for i in range(600)]
    for start in range(0, len(payloads), 50):
        with sender.corked():  # a window in one write, as the outbox sends it
            for p in payloads[start:start + 50]:
                sender.publish(TOPIC, p, qos=1)
        sender.poll(0)

    got: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(got) < len(payloads):
        assert time.monotonic() < deadline, f"{len(got)} of {len(payloads)} messages arrived"
        sender.poll(0)
        for e in receiver.poll(0.05):
            if isinstance(e, Incoming):
                got.append(e.payload)
                receiver.ack(e.mid, e.qos)
    assert [int.from_bytes(g[:4], "big") for g in got] == list(range(len(payloads)))
    assert got == payloads


def test_the_outbox_is_marked_sent_when_the_broker_acknowledges_the_fast_path(pair, monkeypatch):
    """End to end: a node's queued messages go out as the connection's own PUBLISHes (none through
    paho's publish), and the outbox rows are marked sent on their PUBACKs."""
    a, b = pair
    fast: list[str] = []
    through_paho: list[str] = []
    publish, paho_publish = MqttConnection.publish, paho.Client.publish

    def spy(self, topic, payload, **kwargs):
        mid = publish(self, topic, payload, **kwargs)
        if mid in self._fast or mid in self._acked:  # noqa: SLF001 - ours, not paho's
            fast.append(topic)
        return mid

    def paho_spy(self, topic, *args, **kwargs):
        through_paho.append(topic)
        return paho_publish(self, topic, *args, **kwargs)

    monkeypatch.setattr(MqttConnection, "publish", spy)
    monkeypatch.setattr(paho.Client, "publish", paho_spy)
    applied = record_pings(b)
    a.start()
    b.start()
    eventually(lambda: a.sync.status()[0].connected and b.sync.status()[0].connected, what="both connected")
    send_pings(a, b.identity.did, range(1, 41))
    eventually(lambda: queued(a) == 0, what="a's outbox marked sent")
    eventually(lambda: set(applied()) == set(range(1, 41)), what="b to apply them")
    a.stop()
    b.stop()
    to_b = [t for t in fast if b.identity.did in t]
    assert len(to_b) >= 40, f"the pings did not go out on the fast path: {fast}"
    assert not [t for t in through_paho if b.identity.did in t], f"pings went through paho: {through_paho}"
