"""Generated broker configuration: password hashes, access rules and mosquitto.conf text."""

import base64
import hashlib

import pytest

from appliance.crypto.keys import SigningKey
from appliance.errors import BrokerConfigError
from appliance.operator import broker_config as bc

SPACE = "shanghai-auto-parts"
A = SigningKey.from_seed(b"\x0a" * 32).did


def test_a_password_hash_has_the_mosquitto_passwd_layout():
    salt = bytes(range(12))
    line = bc.password_hash("s3cret", salt=salt, iterations=101)
    tag, iterations, b64salt, b64hash = line.split("$")[1:]
    assert (tag, iterations, base64.b64decode(b64salt)) == ("7", "101", salt)
    assert base64.b64decode(b64hash) == hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 101, 64)
    assert bc.password_hash("s3cret") != bc.password_hash("s3cret")  # fresh salt each time


def test_a_member_may_publish_only_under_its_own_subtrees_and_to_inboxes():
    sends = {r.topic for r in bc.member_rules(SPACE, A) if r.kind == "send" and r.allow}
    root = f"tds/v1/{SPACE}"
    assert sends == {f"{root}/node/{A}/#", f"{root}/catalog/{A}/#", f"{root}/evidence/{A}", f"{root}/inbox/+"}
    denied = {r.topic for r in bc.member_rules(SPACE, A) if r.kind == "receive" and not r.allow}
    assert f"{root}/inbox/#" in denied and f"{root}/operator/join/#" in denied


def test_a_join_account_may_only_post_its_request_and_read_its_reply():
    rules = bc.join_rules(SPACE, "00aa11bb22cc33dd")
    assert {(r.kind, r.topic) for r in rules} == {
        ("send", f"tds/v1/{SPACE}/operator/join/00aa11bb22cc33dd"),
        ("receive", f"tds/v1/{SPACE}/operator/join/00aa11bb22cc33dd/reply"),
        ("subscribe", f"tds/v1/{SPACE}/operator/join/00aa11bb22cc33dd/reply"),
    }


def test_the_dynsec_file_holds_only_hashes():
    doc = bc.dynsec_document(SPACE, operator_did=A, operator_password="op-pass", admin_password="admin-pass")
    text = str(doc)
    assert "op-pass" not in text and "admin-pass" not in text
    assert {c["username"] for c in doc["clients"]} == {A, bc.ADMIN_USERNAME}
    assert doc["defaultACLAccess"]["publishClientSend"] is False


def test_a_public_listener_without_tls_is_refused(tmp_path):
    with pytest.raises(BrokerConfigError, match="TLS"):
        bc.mosquitto_conf(tmp_path, bc.ListenerConfig(host="0.0.0.0", port=8883), mode="password-file")
    conf = bc.mosquitto_conf(tmp_path, bc.ListenerConfig(host="0.0.0.0", port=8883, tls_cert=tmp_path / "c.pem",
                                                         tls_key=tmp_path / "k.pem", tls_ca=tmp_path / "ca.pem",
                                                         require_client_cert=True), mode="password-file")
    assert "certfile" in conf and "require_certificate true" in conf and "allow_anonymous false" in conf


def test_a_refused_broker_configuration_is_said_in_the_readers_language(tmp_path):
    with pytest.raises(BrokerConfigError) as e:
        bc.mosquitto_conf(tmp_path, bc.ListenerConfig(host="0.0.0.0", port=8883), mode="password-file")
    assert "a listener on 0.0.0.0 needs TLS (--tls-cert and --tls-key)" in e.value.message("en")
    assert e.value.message("zh_CN") == ("无法生成消息代理（broker）配置：监听 0.0.0.0 需要 TLS"
                                        "（--tls-cert 和 --tls-key）；"
                                        "不加密的 TCP 只能用于 127.0.0.1")


def test_the_password_file_uses_usernames_without_colons():
    accounts = bc.Accounts(SPACE, A, bc.password_hash("x"), members={SigningKey.generate().did: bc.password_hash("y")},
                           joins={"00aa11bb22cc33dd": bc.password_hash("z")})
    for line in bc.password_file_text(accounts).splitlines():
        user, _, hashed = line.partition(":")
        assert ":" not in user and hashed.startswith("$7$")
    acl = bc.acl_file_text(accounts)
    assert f"pattern write tds/v1/{SPACE}/node/did:key:%u/#" in acl and "user join-00aa11bb22cc33dd" in acl


def test_the_generated_mosquitto_conf_carries_the_operators_broker_limits(tmp_path):
    from appliance.net.broker.limits import BrokerLimits

    conf = bc.mosquitto_conf(tmp_path, bc.ListenerConfig(port=1884), mode="password-file",
                             limits=BrokerLimits(max_queued=500, max_queued_bytes=2_000_000, max_packet_size=100_000))
    lines = conf.splitlines()
    assert {"max_queued_messages 500", "max_queued_bytes 2000000", "max_packet_size 100000",
            "max_inflight_messages 1000"} <= set(lines)
    default = bc.mosquitto_conf(tmp_path, bc.ListenerConfig(port=1884), mode="password-file").splitlines()
    assert "max_queued_bytes 67108864" in default and "max_packet_size 300000" in default


def test_broker_limits_come_from_the_settings_file_and_bad_ones_say_which(tmp_path):
    from appliance.errors import ConfigError
    from appliance.settings import load_settings

    path = tmp_path / "dsnode.toml"
    path.write_text("[broker]\nmax_queued_bytes = 1048576\nmax_sessions_per_account = 2\n")
    limits = load_settings(env={}, config_path=path).broker
    assert (limits.max_queued_bytes, limits.max_sessions_per_account, limits.max_queued) == (1048576, 2, 100_000)
    assert load_settings(env={}, config_path=tmp_path / "none.toml").broker.max_queued_bytes == 64 * 1024 * 1024
    for text, named in (("[broker]\nmax_queue = 5\n", "max_queue"), ("[broker]\nmax_queued = 0\n", "max_queued"),
                        ("[broker]\nwrite_buffer = \"big\"\n", "write_buffer"), ("broker = 5\n", "broker")):
        path.write_text(text)
        with pytest.raises(ConfigError, match=named):
            load_settings(env={}, config_path=path)
    path.write_text("kdf_profile = \"fast\"\n")
    with pytest.raises(ConfigError) as e:
        load_settings(env={}, config_path=path)
    assert "kdf_profile must be one of moderate, interactive, minimum, not 'fast'" in e.value.message("en")
    assert "kdf_profile 必须是以下之一：moderate, interactive, minimum，而不是 'fast'" in e.value.message("zh_CN")
