"""The generated password-file configuration on a real mosquitto: our password hashes, and who
may log in and publish where (the dynamic-security mode, on both brokers, is in test_broker_rules)."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest

from appliance.crypto.keys import SigningKey
from appliance.operator import broker_config as bc
from tests.brokers import MOSQUITTO, Mosquitto, free_port
from tests.mqtt_clients import settle

pytestmark = pytest.mark.skipif(not shutil.which(MOSQUITTO) and not __import__("os").path.exists(MOSQUITTO),
                                reason="mosquitto is not installed")

SPACE = "acl-test"
ROOT = f"tds/v1/{SPACE}"


# --- password file + ACL file ----------------------------------------------------------------


def test_our_password_hashes_match_mosquitto_passwd(tmp_path):
    if not shutil.which("mosquitto_passwd"):
        pytest.skip("mosquitto_passwd is not installed")
    path = tmp_path / "passwd"
    path.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(path), "someone", "pass word 密码"], check=True)
    _, line = path.read_text().strip().split(":", 1)
    _, tag, iterations, salt, digest = line.split("$")
    ours = bc.password_hash("pass word 密码", salt=base64.b64decode(salt), iterations=int(iterations))
    assert ours == line


def test_password_file_mode_logs_in_and_confines_members(tmp_path, clients):
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
        pa = clients(port, username=bc.password_username(a), password="pass-a")
        pb = clients(port, username=bc.password_username(b), password="pass-b")
        op = clients(port, username=bc.password_username(operator), password="op-pass")
        assert pa.ok and pb.ok and op.ok
        assert not clients(port, username=bc.password_username(a), password="wrong").ok
        for sub in ("node/#", "catalog/#", "evidence/#", f"inbox/{b}", "operator/revocations"):
            pb.subscribe(f"{ROOT}/{sub}")
        op.subscribe(f"{ROOT}/operator/join/+")
        pa.publish(f"{ROOT}/node/{b}/card", b"forged")
        pa.publish(f"{ROOT}/node/{a}/card", b"own")
        pa.publish(f"{ROOT}/inbox/{b}", b"hi")
        pa.publish(f"{ROOT}/operator/revocations", b"forged")
        joiner = clients(port, username="join-00aa11bb22cc33dd", password="join-pass")
        joiner.publish(f"{ROOT}/operator/join/00aa11bb22cc33dd", b"join")
        joiner.publish(f"{ROOT}/node/{a}/card", b"forged by joiner")
        op.publish(f"{ROOT}/operator/revocations", b"list")
        settle()
        assert pb.topics() == {f"{ROOT}/node/{a}/card", f"{ROOT}/inbox/{b}", f"{ROOT}/operator/revocations"}
        assert [p for t, p, *_ in pb.received() if t.endswith("/revocations")] == [b"list"]
        assert op.topics() == {f"{ROOT}/operator/join/00aa11bb22cc33dd"}
    finally:
        broker.stop()


# --- a broker started as root, as Debian's mosquitto service is -------------------------------


def test_as_root_the_broker_folder_is_handed_to_mosquitto_which_serves_from_it(clients):
    import os
    import pwd
    import stat
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("only root can hand the folder to another user")
    try:
        user = pwd.getpwnam(bc.BROKER_USER)
    except KeyError:
        pytest.skip("there is no mosquitto user")
    base = Path(tempfile.mkdtemp(prefix="dsnode-broker-root-", dir="/tmp"))
    try:
        os.chmod(base, 0o711)  # the mosquitto user may pass through to its own folder
        out = base / "broker"
        out.mkdir()
        operator = SigningKey.generate().did
        bc.write_dynsec_file(out / "dynamic-security.json", bc.dynsec_document(
            SPACE, operator_did=operator, operator_password="op-pass", admin_password="admin-pass"))
        port = free_port()
        conf = bc.mosquitto_conf(out, bc.ListenerConfig(port=port))
        (out / "mosquitto.conf").write_text(conf)
        assert bc.hand_to_broker(out) == bc.BROKER_USER
        for path in (out, out / "dynamic-security.json", out / "mosquitto.conf"):
            st = path.stat()
            assert (st.st_uid, st.st_gid) == (user.pw_uid, user.pw_gid)
            assert stat.S_IMODE(st.st_mode) == (0o700 if path == out else 0o600)
        # started as root with no `user` line, mosquitto drops to its user and still reads the
        # accounts and writes its persistence there
        broker = Mosquitto(out, config_text=conf + "user mosquitto\n", port=port)
        try:
            assert clients(port, username=operator, password="op-pass").ok
            assert not clients(port, username=operator, password="wrong").ok
        finally:
            broker.stop()
        assert (out / "mosquitto.db").stat().st_uid == user.pw_uid
        bc.write_private(out / "passwd", "later rewrite\n")  # a rewrite keeps the folder's owner
        assert (out / "passwd").stat().st_uid == user.pw_uid
    finally:
        shutil.rmtree(base)
