"""The embedded pure-Python MQTT 5 broker with real paho clients: sessions, QoS 1, retained
messages, subscription options, wills (its accounts and access rules are tested beside
mosquitto's in test_broker_rules)."""

from __future__ import annotations

import socket
import threading

import mqtt5
import pytest
from paho.mqtt.subscribeoptions import SubscribeOptions

from appliance.net.broker import EmbeddedBroker
from tests.mqtt_clients import settle, wait_for


@pytest.fixture
def broker():
    b = EmbeddedBroker()
    b.start()
    yield b
    b.stop()


def test_start_returns_a_loopback_port_and_stop_leaves_nothing_behind():
    broker = EmbeddedBroker()
    port = broker.start()
    assert broker.host == "127.0.0.1" and port > 0
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    broker.stop()
    broker.stop()  # twice is fine
    assert not [t for t in threading.enumerate() if t.name == "dsnode-embedded-broker"]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_qos1_messages_for_an_offline_session_wait_and_arrive_on_reconnect(broker, clients):
    sub = clients(broker.port, "node-1", clean_start=False, expiry=300)
    assert sub.ok and not sub.session_present
    sub.subscribe("t/#")
    sub.close()
    pub = clients(broker.port)
    for i in range(5):
        pub.publish(f"t/{i}", f"m{i}".encode())
    back = clients(broker.port, "node-1", clean_start=False, expiry=300)
    assert back.session_present
    wait_for(lambda: len(back.received()) == 5)
    assert [(t, p, q) for t, p, _, q in back.received()] == [(f"t/{i}", f"m{i}".encode(), 1) for i in range(5)]
    # a clean start drops the session and what it held
    back.close()
    pub.publish("t/late", b"late")
    fresh = clients(broker.port, "node-1", clean_start=True, expiry=300)
    assert not fresh.session_present
    settle()
    assert fresh.received() == []


def test_a_session_without_expiry_ends_with_its_connection(broker, clients):
    c = clients(broker.port, "short", clean_start=False, expiry=0)
    c.subscribe("t/#")
    c.close()
    clients(broker.port).publish("t/x", b"x")
    again = clients(broker.port, "short", clean_start=False, expiry=0)
    assert not again.session_present
    settle()
    assert again.received() == []


def test_retained_messages_are_kept_cleared_and_flagged_as_published(broker, clients):
    pub = clients(broker.port)
    pub.publish("state/a", b"A", retain=True)
    pub.publish("state/b", b"B", retain=True)
    pub.publish("state/b", b"", retain=True)  # clears it
    rap = clients(broker.port)
    rap.subscribe("state/#", retainAsPublished=True)
    plain = clients(broker.port)
    plain.subscribe("state/#")
    never = clients(broker.port)
    never.subscribe("state/#", retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
    wait_for(lambda: rap.received() and plain.received())
    assert rap.received() == [("state/a", b"A", True, 1)]  # retained on subscribe: flag set
    assert plain.received() == [("state/a", b"A", True, 1)]
    pub.publish("state/c", b"C", retain=True)
    wait_for(lambda: len(rap.received()) == 2 and len(plain.received()) == 2)
    assert rap.received()[1] == ("state/c", b"C", True, 1)  # live, retain as published
    assert plain.received()[1] == ("state/c", b"C", False, 1)  # live, flag cleared
    settle()
    assert never.received() == [("state/c", b"C", False, 1)]


def test_no_local_keeps_a_clients_own_messages_from_it(broker, clients):
    a = clients(broker.port)
    a.subscribe("room/#", noLocal=True)
    b = clients(broker.port)
    b.subscribe("room/#")
    a.publish("room/1", b"from a")
    b.publish("room/2", b"from b")
    wait_for(lambda: len(b.received()) == 2 and a.received())
    settle()
    assert a.topics() == {"room/2"}
    assert b.topics() == {"room/1", "room/2"}


def test_wildcards_and_unsubscribe(broker, clients):
    plus = clients(broker.port)
    plus.subscribe("a/+/c")
    hash_ = clients(broker.port)
    hash_.subscribe("a/#")
    everything = clients(broker.port)
    everything.subscribe("#")
    pub = clients(broker.port)
    for topic in ("a/b/c", "a/x/c", "a/b/c/d", "a", "b/c"):
        pub.publish(topic, b".")
    wait_for(lambda: len(everything.received()) == 5)
    settle()
    assert plus.topics() == {"a/b/c", "a/x/c"}
    assert hash_.topics() == {"a/b/c", "a/x/c", "a/b/c/d", "a"}
    plus.unsubscribe("a/+/c")
    pub.publish("a/y/c", b".")
    wait_for(lambda: "a/y/c" in hash_.topics())
    settle()
    assert "a/y/c" not in plus.topics()


def test_the_will_goes_out_on_an_abrupt_close_but_not_on_disconnect(broker, clients):
    watcher = clients(broker.port)
    watcher.subscribe("status/#")
    crashing = clients(broker.port, "crashing", will=("status/crashing", b"offline"))
    polite = clients(broker.port, "polite", will=("status/polite", b"offline"))
    polite.close()
    crashing.crash()
    wait_for(lambda: watcher.received())
    settle()
    assert watcher.received() == [("status/crashing", b"offline", False, 1)]
    late = clients(broker.port)
    late.subscribe("status/#")
    wait_for(lambda: late.received())
    assert late.received() == [("status/crashing", b"offline", True, 1)]  # the will was retained


def test_keepalive_ping_and_qos0(broker):
    sock = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
    try:
        sock.sendall(mqtt5.ConnectPacket("raw", keep_alive=30).write())
        connack = _read_packet(sock)
        assert isinstance(connack, mqtt5.ConnAckPacket) and connack.reason_code == 0
        assert connack.max_qos == mqtt5.QoS.AT_LEAST_ONCE
        sock.sendall(mqtt5.PingReqPacket().write())
        assert isinstance(_read_packet(sock), mqtt5.PingRespPacket)
        sock.sendall(mqtt5.SubscribePacket(1, [mqtt5.TopicFilter("q/0", max_qos=mqtt5.QoS.AT_MOST_ONCE)]).write())
        assert isinstance(_read_packet(sock), mqtt5.SubAckPacket)
        sock.sendall(mqtt5.PublishPacket("q/0", b"zero").write())
        got = _read_packet(sock)
        assert (got.topic, got.payload, got.qos) == ("q/0", b"zero", 0)
    finally:
        sock.close()


def _read_packet(sock: socket.socket):
    data = b""
    while True:
        try:
            packet, used = mqtt5.read(memoryview(data))
            return packet
        except IndexError:
            chunk = sock.recv(65536)
            assert chunk, "connection closed"
            data += chunk


def test_a_malformed_packet_closes_only_that_connection(broker, clients):
    good = clients(broker.port)
    good.subscribe("t/#")
    for junk in (b"\x30\x03\x00\x05a",  # a topic length past the packet's end
                 b"\x30\xff\xff\xff\xff\x01",  # a remaining length of more than four bytes
                 b"\xf0\x00",  # AUTH, which this broker does not do
                 b"\x82\x05\x00\x01\x00\x00\x00"):  # SUBSCRIBE with no topic filter
        sock = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
        sock.sendall(mqtt5.ConnectPacket(f"bad-{junk[0]}").write())
        assert isinstance(_read_packet(sock), mqtt5.ConnAckPacket)
        sock.sendall(junk)
        rest = b""
        while chunk := sock.recv(4096):  # the broker says why (DISCONNECT) and closes
            rest += chunk
        sock.close()
    never_connected = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
    never_connected.sendall(b"\x10\x02\x00\x00")  # a CONNECT that is not one
    assert never_connected.recv(10) == b""
    never_connected.close()
    clients(broker.port).publish("t/after", b"still here")
    wait_for(lambda: good.received())
    assert good.received() == [("t/after", b"still here", False, 1)]


def test_a_connection_that_never_says_connect_is_closed(broker, clients):
    sock = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
    sock.sendall(mqtt5.PingReqPacket().write())
    assert sock.recv(10) == b""
    sock.close()


def test_a_second_connection_takes_over_the_session(broker, clients):
    first = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
    try:
        first.sendall(mqtt5.ConnectPacket("same", session_expiry_interval=60).write())
        assert isinstance(_read_packet(first), mqtt5.ConnAckPacket)
        first.sendall(mqtt5.SubscribePacket(1, [mqtt5.TopicFilter("x/#", max_qos=mqtt5.QoS.AT_LEAST_ONCE)]).write())
        assert isinstance(_read_packet(first), mqtt5.SubAckPacket)
        second = clients(broker.port, "same", clean_start=False, expiry=60)
        assert second.session_present
        told = _read_packet(first)
        assert isinstance(told, mqtt5.DisconnectPacket)
        assert told.reason_code == mqtt5.DisconnectReasonCode.SESSION_TAKEN_OVER
        assert first.recv(10) == b""
    finally:
        first.close()
    clients(broker.port).publish("x/1", b"1")
    wait_for(lambda: second.received())
