"""Packets a client sends the embedded broker: genuine ones with bytes changed, cut or added,
and arbitrary bytes behind a CONNECT. Over real sockets to a running broker: whatever arrives,
the broker answers or closes only that connection, never meets a bug (no "a client connection
failed" and no unhandled task error in its log), and keeps serving the others."""

from __future__ import annotations

import logging
import socket

import mqtt5
import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.net.broker import EmbeddedBroker
from appliance.net.broker.limits import BrokerLimits
from tests.fuzzing import scaled
from tests.mqtt_clients import Client, wait_for

Q1 = mqtt5.QoS.AT_LEAST_ONCE
GENUINE = [
    mqtt5.PublishPacket("t/a", b"payload", qos=Q1, packet_id=7, retain=True, content_type="text/plain",
                        response_topic="t/r", correlation_data=b"c", user_properties=[("k", "v")]),
    mqtt5.PublishPacket("t/b", b"", qos=mqtt5.QoS.AT_MOST_ONCE),
    mqtt5.SubscribePacket(3, [mqtt5.TopicFilter("t/#", max_qos=Q1), mqtt5.TopicFilter("+/x", max_qos=Q1)]),
    mqtt5.UnsubscribePacket(4, ["t/#", "nothing"]),
    mqtt5.PubAckPacket(1),
    mqtt5.PingReqPacket(),
    mqtt5.DisconnectPacket(reason_code=mqtt5.DisconnectReasonCode.DISCONNECT_WITH_WILL_MESSAGE,
                           session_expiry_interval=5),
    mqtt5.ConnectPacket("again"),
]
CONNECTS = [
    mqtt5.ConnectPacket("fuzz", keep_alive=0),
    mqtt5.ConnectPacket("fuzz-will", clean_start=True, session_expiry_interval=60,
                        will=mqtt5.Will("w/t", payload=b"gone", qos=Q1, retain=True, will_delay_interval=1)),
    mqtt5.ConnectPacket("fuzz-will-2", will=mqtt5.Will("w/2", payload=b"x", qos=mqtt5.QoS.EXACTLY_ONCE)),
]


class _Bugs(logging.Handler):
    """Records every error the broker's thread logs: a bug, since bad input is expected there."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def broker():
    bugs = _Bugs()
    loggers = [logging.getLogger("appliance.net.broker.server"), logging.getLogger("asyncio")]
    for logger in loggers:
        logger.addHandler(bugs)
    b = EmbeddedBroker(limits=BrokerLimits(max_packet_size=20_000, max_queued_bytes=200_000))
    b.start()
    b.bugs = bugs
    yield b
    b.stop()
    for logger in loggers:
        logger.removeHandler(bugs)


def _mutated(data: st.DataObject, raw: bytes) -> bytes:
    out = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        how = data.draw(st.sampled_from(["flip", "set", "cut", "insert", "lengthen"]))
        at = data.draw(st.integers(0, max(0, len(out) - 1)))
        if how == "flip" and out:
            out[at] ^= 1 << data.draw(st.integers(0, 7))
        elif how == "set" and out:
            out[at] = data.draw(st.sampled_from([0x00, 0x7F, 0x80, 0xC0, 0xED, 0xFF]))
        elif how == "cut":
            del out[at:at + data.draw(st.integers(1, 8))]
        elif how == "insert":
            out[at:at] = data.draw(st.binary(min_size=1, max_size=12))
        else:
            out += data.draw(st.binary(max_size=40))
    return bytes(out)


def _exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` on one connection, end our side, and read all the broker says until it closes."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(1 << 16):
            answer += chunk
        return answer
    except ConnectionResetError:
        return b""
    finally:
        sock.close()


def _still_serving(broker: EmbeddedBroker) -> None:
    assert not broker.bugs.records, broker.bugs.records[0].getMessage()
    assert broker.running


@scaled(1500)
@given(data=st.data())
def test_genuine_packets_with_bytes_changed_bounce_off(broker, data):
    connect = data.draw(st.sampled_from(CONNECTS)).write()
    if data.draw(st.booleans()):
        connect = _mutated(data, connect)
    packets = [data.draw(st.sampled_from(GENUINE)).write() for _ in range(data.draw(st.integers(1, 3)))]
    packets[-1] = _mutated(data, packets[-1])
    _exchange(broker.port, connect + b"".join(packets))
    _still_serving(broker)


@scaled(500)
@given(junk=st.binary(max_size=300))
def test_arbitrary_bytes_after_a_connect_bounce_off(broker, junk):
    _exchange(broker.port, CONNECTS[0].write() + junk)
    _still_serving(broker)


def test_after_the_fuzzing_the_broker_still_routes(broker):
    sub, pub = Client(broker.port), Client(broker.port)
    try:
        sub.subscribe("after/#")
        pub.publish("after/1", b"ok")
        wait_for(lambda: sub.received())
        assert [p for _, p, _, _ in sub.received()] == [b"ok"]
        _still_serving(broker)
    finally:
        sub.close()
        pub.close()
