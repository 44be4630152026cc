"""`appliance.net.mqtt` buffers socket I/O under paho and writes its own QoS 1 PUBLISHes; that
relies on paho internals of the pinned version. If paho is upgraded, this fails first and says
what to look at, instead of the sync tests hanging."""

from importlib.metadata import version

import paho.mqtt.client as paho

from appliance.net.mqtt import _varint


def test_the_paho_internals_the_connection_hooks_into_are_there():
    assert version("paho-mqtt") == "2.2.0", "paho changed: re-check MqttConnection's buffered I/O hooks"
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="hooks", protocol=paho.MQTTv5)
    for name in ("_sock_send", "_sock_recv", "_handle_pubackcomp", "_mid_generate", "_sock_close", "_in_packet",
                 "_last_msg_out"):
        assert hasattr(client, name), f"paho.Client has no {name}"


def test_remaining_length_is_mqtt_variable_byte_integer():
    # the examples of MQTT 5.0 section 1.5.5
    assert [_varint(n) for n in (0, 127, 128, 16383, 16384, 2097151, 2097152)] == [
        b"\x00", b"\x7f", b"\x80\x01", b"\xff\x7f", b"\x80\x80\x01", b"\xff\xff\x7f", b"\x80\x80\x80\x01"]
