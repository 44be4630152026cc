"""A space whose broker listens with TLS: members verify the server against the invitation's CA."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from appliance.domain.sync import SyncTimers
from appliance.node import Node
from appliance.operator.broker_config import ListenerConfig
from appliance.operator.space import Policies
from appliance.storage import KdfParams
from tests.brokers import Mosquitto, free_port
from tests.spaces import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl")]
TIMERS = SyncTimers(backoff_initial=0.05, backoff_max=0.5, reconcile_poll=0.5, stop_timeout=1.0)


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _throwaway_ca(folder):
    """A CA and a server certificate for 127.0.0.1, made with the openssl command line."""
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", "/CN=dsnode test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=folder)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "server.key", "-out", "server.csr", cwd=folder)
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
             "-extfile", "san.ext", "-out", "server.pem", cwd=folder)


def test_a_node_joins_over_tls_and_refuses_a_broker_it_cannot_verify(tmp_path):
    pki = tmp_path / "pki"
    pki.mkdir()
    _throwaway_ca(pki)
    port = free_port()
    nodes = []
    op = Node.init(tmp_path / "op", b"operator pass", name="op", kdf=KdfParams.fast(), sync_timers=TIMERS)
    nodes.append(op)
    broker = None
    try:
        op.operator.create_space(space_id="tls-space", name="TLS", broker_host="127.0.0.1", broker_port=port,
                                 tls_ca_pem=(pki / "ca.pem").read_text(), policies=Policies(auto_admit=True))
        files = op.operator.write_broker_config(tmp_path / "broker", ListenerConfig(
            port=port, tls_cert=pki / "server.pem", tls_key=pki / "server.key"))
        broker = Mosquitto(tmp_path / "broker", config_text=files[0].read_text(), port=port)
        op.start()
        a = Node.init(tmp_path / "a", b"node a pass", name="a", kdf=KdfParams.fast(), sync_timers=TIMERS)
        nodes.append(a)
        invitation = op.operator.invite()
        assert invitation.tls_ca_pem.startswith("-----BEGIN CERTIFICATE-----")
        a.membership.join(invitation.code())
        a.start()
        wait_for(lambda: a.sync.space("tls-space").status == "member", what="admission over TLS")

        # a node that trusts another CA does not talk to this broker at all
        other = tmp_path / "other"
        other.mkdir()
        _throwaway_ca(other)
        b = Node.init(tmp_path / "b", b"node b pass", name="b", kdf=KdfParams.fast(), sync_timers=TIMERS)
        nodes.append(b)
        doc = dict(op.operator.invite().document)
        doc["broker"] = {**doc["broker"], "tls_ca_pem": (other / "ca.pem").read_text()}
        doc.pop("sig")
        from appliance.crypto.statement import sign_statement
        from appliance.services.membership.invitation import encode_code

        b.membership.join(encode_code(sign_statement(op.keyring.signing_key(), doc)))
        b.start()
        wait_for(lambda: b.sync.status("tls-space")[0].last_error, what="the TLS failure")
        assert b.sync.space("tls-space").status == "joining" and not op.operator.admissions("pending")
    finally:
        for node in reversed(nodes):
            node.close()
        if broker is not None:
            broker.stop()
