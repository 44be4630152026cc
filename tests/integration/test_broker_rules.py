"""The operator's accounts and access rules on both brokers a space can run on: a real mosquitto
with the generated dynamic-security configuration, and the embedded broker fed the same document.
Who may log in, and who may publish and subscribe where."""

from __future__ import annotations

import os
import shutil
import threading

import pytest

from appliance.crypto.keys import SigningKey
from appliance.errors import BrokerAdminFailed
from appliance.net.broker import EmbeddedBroker
from appliance.operator import broker_config as bc
from appliance.operator.dynsec import AdminEndpoint, DynsecAdmin
from tests.brokers import MOSQUITTO, Mosquitto, free_port
from tests.mqtt_clients import settle, wait_for

SPACE = "acl-test"
ROOT = f"tds/v1/{SPACE}"
NOT_AUTHORIZED = 0x87
HAVE_MOSQUITTO = bool(shutil.which(MOSQUITTO) or os.path.exists(MOSQUITTO))


@pytest.fixture(params=["mosquitto", "embedded"])
def space_broker(request, tmp_path):
    """(broker with ``.port``, admin client, operator did) for a space with operator password
    ``op-pass`` and admin password ``admin-pass``."""
    operator = SigningKey.generate().did
    if request.param == "mosquitto":
        if not HAVE_MOSQUITTO:
            pytest.skip("mosquitto is not installed")
        out = tmp_path / "broker"
        out.mkdir()
        port = free_port()
        bc.write_dynsec_file(out / "dynamic-security.json", bc.dynsec_document(
            SPACE, operator_did=operator, operator_password="op-pass", admin_password="admin-pass"))
        broker = Mosquitto(out, config_text=bc.mosquitto_conf(out, bc.ListenerConfig(port=port)), port=port)
    else:
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
    settle()
    assert pb.topics() == {f"{ROOT}/node/{a}/card", f"{ROOT}/inbox/{b}"}
    late = clients(broker.port, username=b, password="pass-b")  # nothing forged was retained either
    late.subscribe(f"{ROOT}/#")
    settle()
    assert late.topics() == {f"{ROOT}/node/{a}/card"}
    refused = threading.Event()  # the sender is told: PUBACK "not authorized"
    pa.client.on_publish = lambda c, u, mid, reason, props: reason.is_failure and refused.set()
    pa.client.publish(f"{ROOT}/node/{b}/card", b"and again", qos=1)
    assert refused.wait(5)


def test_a_join_account_can_only_post_its_request_and_read_its_reply(space_broker, clients):
    broker, admin, operator = space_broker
    admin.add_join_account(SPACE, "00aa11bb22cc33dd", "join-pass")
    op = clients(broker.port, username=operator, password="op-pass")
    assert op.ok
    op.subscribe(f"{ROOT}/#")
    joiner = clients(broker.port, username="join-00aa11bb22cc33dd", password="join-pass")
    assert joiner.ok
    assert joiner.subscribe(f"{ROOT}/#") == [NOT_AUTHORIZED]
    assert joiner.subscribe(f"{ROOT}/operator/join/00aa11bb22cc33dd/reply") == [1]
    for topic in (f"{ROOT}/operator/join/00aa11bb22cc33dd", f"{ROOT}/operator/join/ffff", f"{ROOT}/inbox/{operator}",
                  f"{ROOT}/node/join-00aa11bb22cc33dd/card", f"{ROOT}/catalog/x/y"):
        joiner.publish(topic, b"from joiner")
    op.publish(f"{ROOT}/operator/join/00aa11bb22cc33dd/reply", b"welcome")
    op.publish(f"{ROOT}/operator/templates/t1", b"template", retain=True)
    settle()
    assert op.topics() == {f"{ROOT}/operator/join/00aa11bb22cc33dd", f"{ROOT}/operator/templates/t1"}
    assert joiner.topics() == {f"{ROOT}/operator/join/00aa11bb22cc33dd/reply"}


def test_a_removed_account_is_cut_off_and_cannot_log_in_again(space_broker, clients):
    broker, admin, _ = space_broker
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
    broker, admin, _ = space_broker
    a = SigningKey.generate().did
    admin.add_member(SPACE, a, "pass-a")
    member = clients(broker.port, username=a, password="pass-a")
    assert member.subscribe("$CONTROL/dynamic-security/v1/response") == [NOT_AUTHORIZED]
    refused = threading.Event()
    member.client.on_publish = lambda c, u, mid, reason, props: reason.is_failure and refused.set()
    b = SigningKey.generate().did
    admin.add_member(SPACE, b, "pass-b")
    command = '{"commands":[{"command":"deleteClient","username":"%s"}]}' % b
    member.client.publish("$CONTROL/dynamic-security/v1", command.encode(), qos=1)
    assert refused.wait(5)
    settle()
    assert clients(broker.port, username=b, password="pass-b").ok  # the command was not carried out


def test_on_the_embedded_broker_a_client_id_stays_with_its_account_and_sessions_are_bounded(clients):
    from appliance.net.broker.limits import BrokerLimits

    operator = SigningKey.generate().did
    broker = EmbeddedBroker(bc.embedded_broker_document(SPACE, operator_did=operator, operator_password="op-pass",
                                                        admin_password="admin-pass"),
                            limits=BrokerLimits(max_sessions_per_account=2))
    broker.start()
    try:
        admin = DynsecAdmin(AdminEndpoint("127.0.0.1", broker.port, bc.ADMIN_USERNAME, "admin-pass"))
        a, b = SigningKey.generate().did, SigningKey.generate().did
        admin.add_member(SPACE, a, "pass-a")
        admin.add_member(SPACE, b, "pass-b")
        victim = clients(broker.port, "node-of-a", username=a, password="pass-a", clean_start=False, expiry=300)
        victim.subscribe(f"{ROOT}/inbox/{a}")
        thief = clients(broker.port, "node-of-a", username=b, password="pass-b")
        assert thief.connack is not None and thief.connack.value == 0x85  # client identifier not valid
        clients(broker.port, username=b, password="pass-b").publish(f"{ROOT}/inbox/{a}", b"still a's")
        wait_for(lambda: victim.received())  # not pushed off: a's node still gets its inbox
        assert victim.received()[0][1] == b"still a's"
        assert clients(broker.port, "a-second", username=a, password="pass-a").ok
        third = clients(broker.port, "a-third", username=a, password="pass-a")
        assert third.connack is not None and third.connack.value == 0x97  # quota exceeded
        victim.close()  # a kept session, offline now: the oldest of a's makes room for a new one
        assert clients(broker.port, "a-fourth", username=a, password="pass-a").ok
        assert "node-of-a" not in broker.sessions
        assert broker.counters["refused_client_id"] == 1 and broker.counters["refused_sessions"] == 1
    finally:
        broker.stop()
