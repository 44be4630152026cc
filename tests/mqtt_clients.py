"""A paho MQTT 5 client for broker tests (mosquitto and the embedded broker alike)."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from tests.spaces import wait_for  # noqa: F401 - the tests of brokers wait with it too


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


def settle(seconds: float = 0.4) -> None:
    time.sleep(seconds)  # let the broker route what was published


@pytest.fixture
def clients():
    """``clients(port, ...)`` connects a :class:`Client`; all are closed after the test."""
    made: list[Client] = []

    def make(*args, **kwargs) -> Client:
        c = Client(*args, **kwargs)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
