"""TLS to the broker: the node verifies the broker against the invitation's trust anchor, refuses a
broker it cannot verify, and presents a client certificate when the broker asks for one."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from appliance.clock import FixedClock
from tests.brokers import Mosquitto
from tests.integration.sync_helpers import SPACE, eventually, make_node, queued, space_config


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_ca(folder: Path, name: str) -> None:
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=folder)
    _openssl("req", "-x509", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}", "-days", "2",
             "-out", f"{name}.crt", cwd=folder)


def _issue(folder: Path, ca: str, name: str, ext: str) -> None:
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=folder)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}", "-out", f"{name}.csr", cwd=folder)
    (folder / f"{name}.ext").write_text(ext + "\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
             "-days", "2", "-out", f"{name}.crt", "-extfile", f"{name}.ext", cwd=folder)


@pytest.fixture
def pki(tmp_path) -> Path:
    folder = tmp_path / "pki"
    folder.mkdir()
    _make_ca(folder, "space-ca")
    _make_ca(folder, "other-ca")
    _issue(folder, "space-ca", "broker", "subjectAltName=IP:127.0.0.1")
    _issue(folder, "space-ca", "client", "extendedKeyUsage=clientAuth")
    return folder


def _tls_broker(tmp_path: Path, pki: Path, *, client_certs: bool) -> Mosquitto:
    text = (f"listener {{port}} 127.0.0.1\nallow_anonymous true\ncafile {pki}/space-ca.crt\n"
            f"certfile {pki}/broker.crt\nkeyfile {pki}/broker.key\n")
    if client_certs:
        text += "require_certificate true\n"
    return Mosquitto(tmp_path / ("mtls" if client_certs else "tls"), config_text=text)


def test_the_node_verifies_the_broker_against_the_trust_anchor(tmp_path, pki):
    broker = _tls_broker(tmp_path, pki, client_certs=False)
    clock = FixedClock()
    good, bad = make_node(tmp_path / "good", "good", clock), make_node(tmp_path / "bad", "bad", clock)
    try:
        cfg = replace(space_config(broker, good.identity.did), tls_ca_pem=(pki / "space-ca.crt").read_text())
        good.store.db.write(lambda c: good.sync.add_space(c, cfg))
        wrong = replace(space_config(broker, bad.identity.did), tls_ca_pem=(pki / "other-ca.crt").read_text())
        bad.store.db.write(lambda c: bad.sync.add_space(c, wrong))
        good.start()
        bad.start()
        eventually(lambda: good.sync.status()[0].connected and queued(good) == 0, what="a verified TLS connection")
        status = eventually(lambda: (s := bad.sync.status()[0]).last_error and s, what="a refused broker")
        assert not status.connected and "certificate" in status.last_error
    finally:
        good.close()
        bad.close()
        broker.stop()


def test_a_client_certificate_is_presented_when_configured(tmp_path, pki):
    broker = _tls_broker(tmp_path, pki, client_certs=True)
    clock = FixedClock()
    with_cert, without = make_node(tmp_path / "a", "a", clock), make_node(tmp_path / "b", "b", clock)
    try:
        ca = (pki / "space-ca.crt").read_text()
        cfg = replace(space_config(broker, with_cert.identity.did), tls_ca_pem=ca,
                      tls_cert_pem=(pki / "client.crt").read_text(), tls_key_pem=(pki / "client.key").read_text())
        with_cert.store.db.write(lambda c: with_cert.sync.add_space(c, cfg))
        cfg2 = replace(space_config(broker, without.identity.did), tls_ca_pem=ca)
        without.store.db.write(lambda c: without.sync.add_space(c, cfg2))
        with_cert.start()
        without.start()
        eventually(lambda: with_cert.sync.status(SPACE)[0].connected, what="mutual TLS")
        eventually(lambda: without.sync.status()[0].last_error, what="refused without a client certificate")
        assert not without.sync.status()[0].connected
        assert "PRIVATE KEY" not in repr(cfg)
    finally:
        with_cert.close()
        without.close()
        broker.stop()
