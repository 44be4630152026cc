"""The generated broker configuration on a real mosquitto: who may log in and publish where."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from appliance.crypto.keys import SigningKey
from appliance.errors import BrokerAdminFailed
from appliance.operator import broker_config as bc
from appliance.operator.dynsec import AdminEndpoint, DynsecAdmin
from tests.brokers import MOSQUITTO, Mosquitto, free_port

pytestmark = pytest.mark.skipif(not shutil.which(MOSQUITTO) and not __import__("os").path.exists(MOSQUITTO),
                                reason="mosquitto is not installed")

SPACE = "acl-test"
ROOT = f"tds/v1/{SPACE}"


class Probe:
    """A bare MQTT 5 client that records what it receives."""

    def __init__(self, port: int, username: str, password: str) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.connack = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{time.monotonic_ns()}",
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self._ready.wait(5)

    def _on_connect(self, client, userdata, flags, reason, properties):
        if self.connack is None:
            self.connack = reason
            self._ready.set()
        if reason.is_failure:
            client.disconnect()

    def _on_message(self, client, userdata, msg):
        with self._lock:
            self.got.append((msg.topic, bytes(msg.payload)))

    @property
    def ok(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(5)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(5)

    def topics(self) -> set[str]:
        with self._lock:
            return {t for t, _ in self.got}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def probes():
    made: list[Probe] = []

    def make(port, username, password):
        p = Probe(port, username, password)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def _settle(seconds: float = 0.4) -> None:
    time.sleep(seconds)  # let the broker route what was published


@pytest.fixture
def dynsec_broker(tmp_path):
    operator = SigningKey.generate().did
    out = tmp_path / "broker"
    out.mkdir()
    port = free_port()
    bc.write_dynsec_file(out / "dynamic-security.json", bc.dynsec_document(
        SPACE, operator_did=operator, operator_password="op-pass", admin_password="admin-pass"))
    broker = Mosquitto(out, config_text=bc.mosquitto_conf(out, bc.ListenerConfig(port=port)), port=port)
    admin = DynsecAdmin(AdminEndpoint("127.0.0.1", port, bc.ADMIN_USERNAME, "admin-pass"))
    yield broker, admin, operator
    broker.stop()


def test_node_a_cannot_publish_as_node_b(dynsec_broker, probes):
    broker, admin, operator = dynsec_broker
    a, b = SigningKey.generate().did, SigningKey.generate().did
    admin.add_member(SPACE, a, "pass-a")
    admin.add_member(SPACE, b, "pass-b")
    pa, pb = probes(broker.port, a, "pass-a"), probes(broker.port, b, "pass-b")
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
    late = probes(broker.port, b, "pass-b")  # nothing forged was retained either
    late.subscribe(f"{ROOT}/#")
    _settle()
    assert late.topics() == {f"{ROOT}/node/{a}/card"}


def test_a_join_account_can_only_post_its_request_and_read_its_reply(dynsec_broker, probes):
    broker, admin, operator = dynsec_broker
    admin.add_join_account(SPACE, "00aa11bb22cc33dd", "join-pass")
    op = probes(broker.port, operator, "op-pass")
    assert op.ok
    op.subscribe(f"{ROOT}/#")
    joiner = probes(broker.port, "join-00aa11bb22cc33dd", "join-pass")
    assert joiner.ok
    joiner.subscribe(f"{ROOT}/#")  # refused by the broker: a join account may subscribe only to its reply
    joiner.subscribe(f"{ROOT}/operator/join/00aa11bb22cc33dd/reply")
    for topic in (f"{ROOT}/operator/join/00aa11bb22cc33dd", f"{ROOT}/operator/join/ffff", f"{ROOT}/inbox/{operator}",
                  f"{ROOT}/node/join-00aa11bb22cc33dd/card", f"{ROOT}/catalog/x/y"):
        joiner.publish(topic, b"from joiner")
    op.publish(f"{ROOT}/operator/join/00aa11bb22cc33dd/reply", b"welcome")
    op.publish(f"{ROOT}/operator/templates/t1", b"template", retain=True)
    _settle()
    assert op.topics() == {f"{ROOT}/operator/join/00aa11bb22cc33dd", f"{ROOT}/operator/templates/t1"}
    assert joiner.topics() == {f"{ROOT}/operator/join/00aa11bb22cc33dd/reply"}


def test_a_removed_account_is_cut_off_and_cannot_log_in_again(dynsec_broker, probes):
    broker, admin, operator = dynsec_broker
    a = SigningKey.generate().did
    admin.add_member(SPACE, a, "pass-a")
    connected = probes(broker.port, a, "pass-a")
    assert connected.ok
    admin.remove_member(a)
    admin.remove_member(a)  # twice is fine
    deadline = time.monotonic() + 5
    while connected.client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not connected.client.is_connected()
    assert not probes(broker.port, a, "pass-a").ok


def test_a_wrong_admin_password_is_reported(dynsec_broker):
    broker, _, _ = dynsec_broker
    with pytest.raises(BrokerAdminFailed):
        DynsecAdmin(AdminEndpoint("127.0.0.1", broker.port, bc.ADMIN_USERNAME, "wrong", timeout=2)).add_member(
            SPACE, SigningKey.generate().did, "x")


# --- password file + ACL file ----------------------------------------------------------------


def test_our_password_hashes_match_mosquitto_passwd(tmp_path):
    if not shutil.which("mosquitto_passwd"):
        pytest.skip("mosquitto_passwd is not installed")
    path = tmp_path / "passwd"
    path.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(path), "someone", "pass word 密码"], check=True)
    _, line = path.read_text().strip().split(":", 1)
    _, tag, iterations, salt, digest = line.split("$")
    import base64

    ours = bc.password_hash("pass word 密码", salt=base64.b64decode(salt), iterations=int(iterations))
    assert ours == line


def test_password_file_mode_logs_in_and_confines_members(tmp_path, probes):
    operator, a, b = (SigningKey.generate().did for _ in range(3))
    out = tmp_path / "broker"
    out.mkdir()
    accounts = bc.Accounts(SPACE, operator, bc.password_hash("op-pass"),
                           members={a: bc.password_hash("pass-a"), b: bc.password_hash("pass-b")},
                           joins={"00aa11bb22cc33dd": bc.password_hash("join-pass")})
    bc.write_private(out / "passwd", bc.password_file_text(accounts))
    bc.write_private(out / "acl", bc.acl_file_text(accounts))
    port = free_port()
    broker = Mosquitto(out, config_text=bc.mosquitto_conf(out, bc.ListenerConfig(port=port), mode="password-file"),
                       port=port)
    try:
        pa = probes(port, bc.password_username(a), "pass-a")
        pb = probes(port, bc.password_username(b), "pass-b")
        op = probes(port, bc.password_username(operator), "op-pass")
        assert pa.ok and pb.ok and op.ok
        assert not probes(port, bc.password_username(a), "wrong").ok
        for sub in ("node/#", "catalog/#", "evidence/#", f"inbox/{b}", "operator/revocations"):
            pb.subscribe(f"{ROOT}/{sub}")
        op.subscribe(f"{ROOT}/operator/join/+")
        pa.publish(f"{ROOT}/node/{b}/card", b"forged")
        pa.publish(f"{ROOT}/node/{a}/card", b"own")
        pa.publish(f"{ROOT}/inbox/{b}", b"hi")
        pa.publish(f"{ROOT}/operator/revocations", b"forged")
        joiner = probes(port, "join-00aa11bb22cc33dd", "join-pass")
        joiner.publish(f"{ROOT}/operator/join/00aa11bb22cc33dd", b"join")
        joiner.publish(f"{ROOT}/node/{a}/card", b"forged by joiner")
        op.publish(f"{ROOT}/operator/revocations", b"list")
        _settle()
        assert pb.topics() == {f"{ROOT}/node/{a}/card", f"{ROOT}/inbox/{b}", f"{ROOT}/operator/revocations"}
        assert [p for t, p in pb.got if t.endswith("/revocations")] == [b"list"]
        assert op.topics() == {f"{ROOT}/operator/join/00aa11bb22cc33dd"}
    finally:
        broker.stop()
