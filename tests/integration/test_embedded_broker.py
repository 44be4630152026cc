"""The embedded pure-Python MQTT 5 broker with real paho clients: sessions, QoS 1, retained
messages, subscription options, wills, accounts and the same access rules as mosquitto."""

from __future__ import annotations

import socket
import threading
import time

import mqtt5
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from appliance.crypto.keys import SigningKey
from appliance.errors import BrokerAdminFailed
from appliance.net.broker import EmbeddedBroker
from appliance.operator import broker_config as bc
from appliance.operator.dynsec import AdminEndpoint, DynsecAdmin

SPACE = "acl-test"
ROOT = f"tds/v1/{SPACE}"


class Client:
    """A paho MQTT 5 client on its own loop thread that records what it receives."""

    def __init__(self, port: int, client_id: str | None = None, *, username: str | None = None,
                 password: str | None = None, clean_start: bool = True, expiry: int = 0,
                 will: tuple[str, bytes] | None = None) -> None:
        self.got: list[tuple[str, bytes, bool, int]] = []
        self.connack = None
        self.session_present = None
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"c-{time.monotonic_ns()}",
                                  protocol=mqtt.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = expiry
        self.client.connect("127.0.0.1", port, clean_start=clean_start, properties=props)
        self.client.loop_start()
        self._connected.wait(5)

    def _on_connect(self, client, userdata, flags, reason, properties):
        self.connack = reason
        self.session_present = flags.session_present
        self._connected.set()

    def _on_message(self, client, userdata, msg):
        with self._lock:
            self.got.append((msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos))

    @property
    def ok(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def subscribe(self, topic: str, **options) -> list[int]:
        done = threading.Event()
        granted = []

        def on_subscribe(client, userdata, mid, reasons, properties):
            granted.extend(r.value for r in reasons)
            done.set()

        self.client.on_subscribe = on_subscribe
        self.client.subscribe([(topic, SubscribeOptions(qos=1, **options))])
        assert done.wait(5)
        return granted

    def unsubscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_unsubscribe = lambda *a: done.set()
        self.client.unsubscribe(topic)
        assert done.wait(5)

    def publish(self, topic: str, payload: bytes, retain: bool = False, qos: int = 1):
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos:
            info.wait_for_publish(5)
        return info

    def received(self) -> list[tuple[str, bytes, bool, int]]:
        with self._lock:
            return list(self.got)

    def topics(self) -> set[str]:
        return {t for t, *_ in self.received()}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def crash(self) -> None:
        """Drop the connection without DISCONNECT, as a crashed process would."""
        self.client.loop_stop()
        self.client.socket().close()


def wait_for(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out")


def _settle(seconds: float = 0.3) -> None:
    time.sleep(seconds)


@pytest.fixture
def broker():
    b = EmbeddedBroker()
    b.start()
    yield b
    b.stop()


@pytest.fixture
def clients():
    made: list[Client] = []

    def make(*args, **kwargs) -> Client:
        c = Client(*args, **kwargs)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


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
    _settle()
    assert fresh.received() == []


def test_a_session_without_expiry_ends_with_its_connection(broker, clients):
    c = clients(broker.port, "short", clean_start=False, expiry=0)
    c.subscribe("t/#")
    c.close()
    clients(broker.port).publish("t/x", b"x")
    again = clients(broker.port, "short", clean_start=False, expiry=0)
    assert not again.session_present
    _settle()
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
    _settle()
    assert never.received() == [("state/c", b"C", False, 1)]


def test_no_local_keeps_a_clients_own_messages_from_it(broker, clients):
    a = clients(broker.port)
    a.subscribe("room/#", noLocal=True)
    b = clients(broker.port)
    b.subscribe("room/#")
    a.publish("room/1", b"from a")
    b.publish("room/2", b"from b")
    wait_for(lambda: len(b.received()) == 2 and a.received())
    _settle()
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
    _settle()
    assert plus.topics() == {"a/b/c", "a/x/c"}
    assert hash_.topics() == {"a/b/c", "a/x/c", "a/b/c/d", "a"}
    plus.unsubscribe("a/+/c")
    pub.publish("a/y/c", b".")
    wait_for(lambda: "a/y/c" in hash_.topics())
    _settle()
    assert "a/y/c" not in plus.topics()


def test_the_will_goes_out_on_an_abrupt_close_but_not_on_disconnect(broker, clients):
    watcher = clients(broker.port)
    watcher.subscribe("status/#")
    crashing = clients(broker.port, "crashing", will=("status/crashing", b"offline"))
    polite = clients(broker.port, "polite", will=("status/polite", b"offline"))
    polite.close()
    crashing.crash()
    wait_for(lambda: watcher.received())
    _settle()
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


# --- accounts and rules from the operator's data --------------------------------------------


@pytest.fixture
def space_broker():
    operator = SigningKey.generate().did
    broker = EmbeddedBroker(bc.embedded_broker_document(SPACE, operator_did=operator, operator_password="op-pass",
                                                        admin_password="admin-pass"))
    broker.start()
    admin = DynsecAdmin(AdminEndpoint("127.0.0.1", broker.port, bc.ADMIN_USERNAME, "admin-pass"))
    yield broker, admin, operator
    broker.stop()


def test_wrong_passwords_and_unknown_users_are_refused(space_broker, clients):
    broker, _, operator = space_broker
    assert clients(broker.port, username=operator, password="op-pass").ok
    for username, password in ((operator, "wrong"), ("nobody", "op-pass"), (None, None)):
        refused = clients(broker.port, username=username, password=password)
        assert refused.connack is not None and refused.connack.is_failure
        assert "password" in str(refused.connack).lower() or refused.connack.value == 0x86


def test_node_a_cannot_publish_as_node_b(space_broker, clients):
    broker, admin, operator = space_broker
    a, b = SigningKey.generate().did, SigningKey.generate().did
    admin.add_member(SPACE, a, "pass-a")
    admin.add_member(SPACE, b, "pass-b")
    pa, pb = clients(broker.port, username=a, password="pass-a"), clients(broker.port, username=b, password="pass-b")
    assert pa.ok and pb.ok
    pb.subscribe(f"{ROOT}/#")
    pa.publish(f"{ROOT}/node/{b}/card", b"forged card", retain=True)
    pa.publish(f"{ROOT}/catalog/{b}/ds-1", b"forged listing", retain=True)
    pa.publish(f"{ROOT}/operator/revocations", b"forged list", retain=True)
    pa.publish(f"{ROOT}/node/{a}/card", b"a's own card", retain=True)
    pa.publish(f"{ROOT}/inbox/{b}", b"hello b")
    pa.publish(f"{ROOT}/inbox/{operator}", b"hello operator")
    _settle()
    assert pb.topics() == {f"{ROOT}/node/{a}/card", f"{ROOT}/inbox/{b}"}
    late = clients(broker.port, username=b, password="pass-b")  # nothing forged was retained either
    late.subscribe(f"{ROOT}/#")
    _settle()
    assert late.topics() == {f"{ROOT}/node/{a}/card"}
    # the refusal is visible to the sender: PUBACK "not authorized"
    assert pa.publish(f"{ROOT}/node/{b}/card", b"again").rc == 0  # queued fine ...
    refused = threading.Event()
    pa.client.on_publish = lambda c, u, mid, reason, props: reason.is_failure and refused.set()
    pa.client.publish(f"{ROOT}/node/{b}/card", b"and again", qos=1)
    assert refused.wait(5)  # ... and refused by the broker


def test_a_join_account_can_only_post_its_request_and_read_its_reply(space_broker, clients):
    broker, admin, operator = space_broker
    admin.add_join_account(SPACE, "00aa11bb22cc33dd", "join-pass")
    op = clients(broker.port, username=operator, password="op-pass")
    assert op.ok
    op.subscribe(f"{ROOT}/#")
    joiner = clients(broker.port, username="join-00aa11bb22cc33dd", password="join-pass")
    assert joiner.ok
    assert joiner.subscribe(f"{ROOT}/#") == [0x87]  # not authorized
    assert joiner.subscribe(f"{ROOT}/operator/join/00aa11bb22cc33dd/reply") == [1]
    for topic in (f"{ROOT}/operator/join/00aa11bb22cc33dd", f"{ROOT}/operator/join/ffff", f"{ROOT}/inbox/{operator}",
                  f"{ROOT}/node/join-00aa11bb22cc33dd/card", f"{ROOT}/catalog/x/y"):
        joiner.publish(topic, b"from joiner")
    op.publish(f"{ROOT}/operator/join/00aa11bb22cc33dd/reply", b"welcome")
    op.publish(f"{ROOT}/operator/templates/t1", b"template", retain=True)
    _settle()
    assert op.topics() == {f"{ROOT}/operator/join/00aa11bb22cc33dd", f"{ROOT}/operator/templates/t1"}
    assert joiner.topics() == {f"{ROOT}/operator/join/00aa11bb22cc33dd/reply"}


def test_a_removed_account_is_cut_off_and_cannot_log_in_again(space_broker, clients):
    broker, admin, operator = space_broker
    a = SigningKey.generate().did
    admin.add_member(SPACE, a, "pass-a")
    connected = clients(broker.port, username=a, password="pass-a")
    assert connected.ok
    admin.remove_member(a)
    admin.remove_member(a)  # twice is fine
    wait_for(lambda: not connected.client.is_connected())
    assert not clients(broker.port, username=a, password="pass-a").ok


def test_a_wrong_admin_password_is_reported(space_broker):
    broker, _, _ = space_broker
    with pytest.raises(BrokerAdminFailed):
        DynsecAdmin(AdminEndpoint("127.0.0.1", broker.port, bc.ADMIN_USERNAME, "wrong", timeout=2)).add_member(
            SPACE, SigningKey.generate().did, "x")


def test_members_cannot_use_the_control_topic(space_broker, clients):
    broker, admin, operator = space_broker
    a = SigningKey.generate().did
    admin.add_member(SPACE, a, "pass-a")
    member = clients(broker.port, username=a, password="pass-a")
    assert member.subscribe("$CONTROL/dynamic-security/v1/response") == [0x87]
    refused = threading.Event()
    member.client.on_publish = lambda c, u, mid, reason, props: reason.is_failure and refused.set()
    member.client.publish("$CONTROL/dynamic-security/v1", b'{"commands":[{"command":"deleteClient","username":"x"}]}',
                          qos=1)
    assert refused.wait(5)
    assert clients(broker.port, username=operator, password="op-pass").ok
