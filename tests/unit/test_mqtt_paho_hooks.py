"""`appliance.net.mqtt` buffers socket I/O under paho and writes its own QoS 1 PUBLISHes; that
relies on paho internals of the pinned version. If paho is upgraded, this fails first and says
what to look at, instead of the sync tests hanging."""

from importlib.metadata import version

import paho.mqtt.client as paho

from appliance.net.mqtt import _varint


REVISIT = "paho changed: revisit appliance/net/mqtt.py (buffered socket I/O and hand-encoded QoS 1 PUBLISHes)"


def test_the_paho_internals_the_connection_hooks_into_are_there():
    assert version("paho-mqtt") == "2.2.0", REVISIT
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="hooks", protocol=paho.MQTTv5)
    for name in ("_sock_send", "_sock_recv", "_handle_pubackcomp", "_mid_generate", "_sock_close", "_in_packet",
                 "_last_msg_out", "_sock"):
        assert hasattr(client, name), f"paho.Client has no {name}: {REVISIT}"
    assert "packet" in client._in_packet, f"paho's _in_packet has no 'packet' (a PUBACK's variable header): {REVISIT}"


def test_paho_reads_writes_and_hands_on_pubacks_through_the_hooked_methods():
    """The hooks are instance attributes that replace paho's methods, so they only work while paho
    calls them through ``self``: a PUBACK read must reach ``self._handle_pubackcomp`` (where our own
    PUBLISHes are matched), reads ``self._sock_recv`` and writes ``self._sock_send``."""
    import inspect

    calls = {
        paho.Client._packet_read: "self._sock_recv(",
        paho.Client._packet_write: "self._sock_send(",
        paho.Client._packet_handle: 'self._handle_pubackcomp("PUBACK")',
        paho.Client._handle_pubackcomp: 'self._in_packet["packet"]',
    }
    for method, call in calls.items():
        assert call in inspect.getsource(method), f"paho's {method.__name__} no longer does {call}: {REVISIT}"
    assert list(inspect.signature(paho.Client._sock_recv).parameters) == ["self", "bufsize"], REVISIT
    assert list(inspect.signature(paho.Client._sock_send).parameters) == ["self", "buf"], REVISIT


def test_remaining_length_is_mqtt_variable_byte_integer():
    # the examples of MQTT 5.0 section 1.5.5
    assert [_varint(n) for n in (0, 127, 128, 16383, 16384, 2097151, 2097152)] == [
        b"\x00", b"\x7f", b"\x80\x01", b"\xff\x7f", b"\x80\x80\x01", b"\xff\xff\x7f", b"\x80\x80\x80\x01"]


def test_a_broker_that_sends_a_topic_that_is_not_utf8_gets_it_acknowledged_as_junk():
    """mosquitto refuses such topics, but the broker is not trusted: a bad one may pass any bytes on.
    The message must come out as junk (and be acknowledged), not raise out of paho's callback and
    take the connection down, only to be delivered again on the next one."""
    import socket
    import time

    from appliance.net.mqtt import INVALID_TOPIC, BrokerParams, Incoming, MqttConnection

    server = socket.create_server(("127.0.0.1", 0))
    conn = MqttConnection(BrokerParams("127.0.0.1", server.getsockname()[1], client_id="bad-broker-test"))
    try:
        conn.open()
        peer, _ = server.accept()
        peer.settimeout(5)
        peer.recv(4096)  # CONNECT
        topic = b"tds/v1/s/inbox/\xff\xfe"
        publish = len(topic).to_bytes(2, "big") + topic + b"\x00\x05" + b"\x00" + b"{}"  # id 5, no properties
        peer.sendall(b"\x20\x03\x00\x00\x00" + b"\x32" + bytes([len(publish)]) + publish)  # CONNACK, PUBLISH QoS 1
        incoming: list = []
        deadline = time.monotonic() + 5
        while not incoming and time.monotonic() < deadline:
            incoming = [e for e in conn.poll(0.1) if isinstance(e, Incoming)]
        assert [(e.topic, e.mid) for e in incoming] == [(INVALID_TOPIC, 5)]
        conn.ack(5, 1)
        conn.poll(0.1)
        assert peer.recv(4096).startswith(b"\x40")  # PUBACK: the broker will not deliver it again
        peer.close()
    finally:
        conn.close()
        server.close()
