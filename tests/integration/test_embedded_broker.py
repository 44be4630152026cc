"""The embedded pure-Python MQTT 5 broker with real paho clients: sessions, QoS 1, retained
messages, subscription options, wills (its accounts and access rules are tested beside
mosquitto's in test_broker_rules)."""

from __future__ import annotations

import socket
import threading
import time

import mqtt5
import pytest
from paho.mqtt.subscribeoptions import SubscribeOptions

from appliance.net.broker import EmbeddedBroker
from appliance.net.broker.limits import BrokerLimits
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


_LEFT: dict[int, bytes] = {}  # bytes read past the last packet, by socket


def _read_packet(sock: socket.socket):
    data = _LEFT.pop(id(sock), b"")
    while True:
        try:
            packet, used = mqtt5.read(memoryview(data))
            _LEFT[id(sock)] = data[used:]
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


# --- what no client can do to the broker or to the others ----------------------------------------

def _raw(port: int, client_id: str, *, rcvbuf: int | None = None, **connect) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connecting: the window stays small
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    sock.sendall(mqtt5.ConnectPacket(client_id, **connect).write())
    connack = _read_packet(sock)
    assert isinstance(connack, mqtt5.ConnAckPacket)
    return sock


def _packets_until_closed(sock: socket.socket) -> list:
    data = _LEFT.pop(id(sock), b"")
    while chunk := sock.recv(1 << 20):
        data += chunk
    packets, view = [], memoryview(data)
    while view:
        packet, used = mqtt5.read(view)
        packets.append(packet)
        view = view[used:]
    return packets


def test_a_string_that_is_not_utf8_gets_a_malformed_packet_disconnect_and_the_others_are_served(broker, clients):
    good = clients(broker.port)
    good.subscribe("t/#")
    sock = _raw(broker.port, "bad-text")
    packet = bytearray(mqtt5.PublishPacket("t/xyz", b"p", qos=mqtt5.QoS.AT_LEAST_ONCE, packet_id=1).write())
    at = packet.index(b"xyz")
    packet[at:at + 3] = b"\xff\xfe\xfd"  # the codec panics (a BaseException) decoding this topic
    sock.sendall(packet)
    told = _packets_until_closed(sock)
    sock.close()
    assert [type(p) for p in told] == [mqtt5.DisconnectPacket]
    assert told[0].reason_code == mqtt5.DisconnectReasonCode.MALFORMED_PACKET
    connect = bytearray(mqtt5.ConnectPacket("abc").write())
    connect[connect.index(b"abc")] = 0xFF  # and a client id that is not UTF-8: closed before CONNACK
    never = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
    never.sendall(connect)
    assert never.recv(10) == b""
    never.close()
    assert broker.counters["malformed"] == 2
    clients(broker.port).publish("t/after", b"still here")
    wait_for(lambda: good.received())
    assert good.received() == [("t/after", b"still here", False, 1)]


def test_a_message_reaches_a_session_once_however_many_of_its_filters_match(broker, clients):
    sub = clients(broker.port)
    for pattern in ("a/#", "a/+", "a/b", "#", "+/b", "+/+"):
        assert sub.subscribe(pattern) == [1]
    other = clients(broker.port)
    other.subscribe("a/b")
    clients(broker.port).publish("a/b", b"once")
    wait_for(lambda: sub.received() and other.received())
    settle()
    assert sub.received() == other.received() == [("a/b", b"once", False, 1)]
    sub.unsubscribe("a/#")
    sub.unsubscribe("#")
    clients(broker.port).publish("x/b", b"by +/b and +/+")
    clients(broker.port).publish("a/c", b"by a/+ and +/+")
    clients(broker.port).publish("$SYS/b", b"no wildcard filter matches a $ topic")
    settle()
    assert [p for _, p, _, _ in sub.received()] == [b"once", b"by +/b and +/+", b"by a/+ and +/+"]


def test_one_subscribe_repeating_hash_gets_a_large_retained_message_once_and_a_quota(broker, clients):
    clients(broker.port).publish("big/r", b"x" * 200_000, retain=True)
    sock = _raw(broker.port, "greedy")
    try:
        sock.sendall(mqtt5.SubscribePacket(1, [mqtt5.TopicFilter("#", max_qos=mqtt5.QoS.AT_LEAST_ONCE)] * 5000).write())
        suback = _read_packet(sock)
        assert isinstance(suback, mqtt5.SubAckPacket)
        granted = broker.limits.max_filters_per_subscribe
        assert [int(c) for c in suback.reason_codes] == [1] * granted + [0x97] * (5000 - granted)  # QUOTA_EXCEEDED
        got = _read_packet(sock)
        assert isinstance(got, mqtt5.PublishPacket) and len(got.payload) == 200_000
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # nothing more: one copy, not one per repeated filter
    finally:
        sock.close()


def test_a_session_holds_a_bounded_number_of_filters():
    broker = EmbeddedBroker(limits=BrokerLimits(max_subscriptions=3))
    broker.start()
    try:
        sock = _raw(broker.port, "many")
        filters = [mqtt5.TopicFilter(f"f/{i}", max_qos=mqtt5.QoS.AT_LEAST_ONCE) for i in range(5)]
        sock.sendall(mqtt5.SubscribePacket(1, filters).write())
        assert [int(c) for c in _read_packet(sock).reason_codes] == [1, 1, 1, 0x97, 0x97]
        sock.sendall(mqtt5.SubscribePacket(2, filters[:1]).write())  # the same filter again replaces it
        assert [int(c) for c in _read_packet(sock).reason_codes] == [1]
        sock.close()
    finally:
        broker.stop()


def test_a_subscriber_that_stops_reading_costs_bounded_memory_and_does_not_hold_up_the_others(clients):
    limits = BrokerLimits(write_buffer=128 * 1024, max_queued_bytes=2 * 1024 * 1024)
    broker = EmbeddedBroker(limits=limits)
    broker.start()
    try:
        stalled = _raw(broker.port, "stalled", rcvbuf=4096)
        stalled.sendall(mqtt5.SubscribePacket(1, [mqtt5.TopicFilter("t/#", max_qos=mqtt5.QoS.AT_LEAST_ONCE),
                                                  mqtt5.TopicFilter("q0/#", max_qos=mqtt5.QoS.AT_MOST_ONCE)]).write())
        assert isinstance(_read_packet(stalled), mqtt5.SubAckPacket)
        healthy = clients(broker.port)
        healthy.subscribe("t/#")
        pub = clients(broker.port)
        payload = b"m" * 20_000
        started = time.monotonic()
        for i in range(300):  # 6 MB at QoS 0, then 6 MB at QoS 1: far past what the stalled one may hold
            pub.publish(f"q0/{i}", payload, qos=0)
        for i in range(300):
            assert pub.publish(f"t/{i}", payload).is_published()
        wait_for(lambda: len(healthy.received()) == 300, timeout=30)
        assert time.monotonic() - started < 30
        assert [t for t, *_ in healthy.received()] == [f"t/{i}" for i in range(300)]  # all, in order
        assert broker.counters["dropped_qos0"] > 0
        assert broker.counters["dropped_queue_full"] > 0 and broker.counters["disconnected_slow"] == 1
        assert "stalled" not in broker.sessions  # no session expiry: it ended with its connection
        told = _packets_until_closed(stalled)  # what it finally reads: what was buffered, then why
        stalled.close()
        assert isinstance(told[-1], mqtt5.DisconnectPacket)
        assert told[-1].reason_code == mqtt5.DisconnectReasonCode.QUOTA_EXCEEDED
        assert sum(len(p.payload) for p in told if isinstance(p, mqtt5.PublishPacket)) < 8 * 1024 * 1024
    finally:
        broker.stop()


def test_a_kept_session_of_a_slow_reader_queues_a_bounded_number_of_bytes(clients):
    broker = EmbeddedBroker(limits=BrokerLimits(max_queued_bytes=100_000))
    broker.start()
    try:
        away = clients(broker.port, "away", clean_start=False, expiry=300)
        away.subscribe("t/#")
        away.close()
        pub = clients(broker.port)
        for i in range(20):
            pub.publish(f"t/{i}", b"q" * 10_000)
        assert broker.sessions["away"].queued_bytes <= 100_000
        assert broker.counters["dropped_queue_full"] == 10
        back = clients(broker.port, "away", clean_start=False, expiry=300)
        wait_for(lambda: len(back.received()) == 10)
        settle()
        assert [t for t, *_ in back.received()] == [f"t/{i}" for i in range(10)]
    finally:
        broker.stop()


def test_a_will_at_qos_2_is_refused_with_its_reason(broker):
    sock = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
    try:
        sock.sendall(mqtt5.ConnectPacket("will-2", will=mqtt5.Will("w/t", payload=b"x", qos=mqtt5.QoS.EXACTLY_ONCE))
                     .write())
        connack = _read_packet(sock)
        assert connack.reason_code == mqtt5.ConnAckReasonCode.QUALITY_NOT_SUPPORTED
        assert sock.recv(10) == b""
    finally:
        sock.close()


def test_who_receives_a_topic_follows_every_subscription_and_session_change(broker, clients):
    pub, first = clients(broker.port), clients(broker.port, "first", clean_start=False, expiry=60)
    first.subscribe("r/#")
    pub.publish("r/x", b"1")  # the receivers of r/x are remembered from here on
    wait_for(lambda: len(first.received()) == 1)
    late = clients(broker.port, "late")
    late.subscribe("r/x")
    pub.publish("r/x", b"2")
    wait_for(lambda: late.received() and len(first.received()) == 2)
    late.unsubscribe("r/x")
    first.close()
    again = clients(broker.port, "first", clean_start=True)  # the same client id, a fresh session: no filters
    pub.publish("r/x", b"3")
    settle()
    assert [p for _, p, _, _ in late.received()] == [b"2"]
    assert again.received() == []
