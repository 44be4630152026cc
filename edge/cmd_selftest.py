"""`dsnode selftest`: does this installation work? Each check uses one piece the bundle or the
package must carry, in a temporary home that is removed afterwards; one line per check, exit 0
only if every check passes.

- assets: the message catalogs of both languages, the DSP schemas, the contract and offer templates;
- store: a new encrypted store (SQLCipher, the migrations, the Argon2 key derivation) opened again;
- crypto: Ed25519 signatures (PyNaCl) and AES-256-GCM and Ed25519 (cryptography), a changed byte refused;
- discovery: zeroconf on 127.0.0.1 advertises a service and browses it back;
- mqtt: a message published and received through a broker (the embedded one on a free loopback
  port, or ``--broker host:port``);
- qt: a QApplication offscreen, and a QR picture read back (Qt and zxing-cpp, as joining from a
  QR picture does), for the desktop build only (when PySide6 imports).
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from appliance import i18n
from edge import forward

t = i18n.t

WAIT = 10.0  # seconds a network check may take before it fails


def check_assets(home: Path) -> None:
    from appliance import dsp_schema, i18n
    from appliance.operator.templates import standard_templates
    from appliance.resources import assets_dir

    for lang in i18n.LANGS:
        if len(i18n.catalog(lang)) < 100:
            raise RuntimeError(f"the {lang} message catalog is missing from {assets_dir()}")
    if len(dsp_schema.registry()) == 0:
        raise RuntimeError(f"no DSP schemas in {dsp_schema.schema_dir()}")
    if not standard_templates():
        raise RuntimeError("no contract or offer templates")


def check_store(home: Path) -> None:
    from appliance.node import Node
    from appliance.storage.kdf import KdfParams

    passphrase = secrets.token_hex(16).encode()
    with Node.init(home, passphrase, name="selftest", kdf=KdfParams.fast()) as node:
        did = node.identity.did
    with Node.open(home, passphrase) as node:
        status = node.status(check_store=True)
    if status.did != did or status.store_damage:
        raise RuntimeError(f"the store opened again is not the one written ({status.store_damage})")


def check_crypto(home: Path) -> None:
    import nacl.exceptions
    import nacl.signing
    from cryptography.exceptions import InvalidSignature, InvalidTag
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    message = b"dsnode selftest " + secrets.token_bytes(16)
    key = nacl.signing.SigningKey.generate()
    signed = key.sign(message)
    key.verify_key.verify(signed)
    _refused(lambda: key.verify_key.verify(_flipped(signed)), nacl.exceptions.BadSignatureError)

    other = Ed25519PrivateKey.generate()
    signature = other.sign(message)
    other.public_key().verify(signature, message)
    _refused(lambda: other.public_key().verify(signature, _flipped(message)), InvalidSignature)

    aead, nonce = AESGCM(AESGCM.generate_key(bit_length=256)), secrets.token_bytes(12)
    sealed = aead.encrypt(nonce, message, b"header")
    if aead.decrypt(nonce, sealed, b"header") != message:
        raise RuntimeError("AES-GCM gave back other bytes")
    _refused(lambda: aead.decrypt(nonce, _flipped(sealed), b"header"), InvalidTag)


def _flipped(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


def _refused(call: Callable[[], object], error: type[BaseException]) -> None:
    try:
        call()
    except error:
        return
    raise RuntimeError("a changed byte was accepted")


def check_discovery(home: Path) -> None:
    import nacl.signing

    from appliance.crypto.keys import did_from_public_key
    from appliance.net.discovery import Advertiser, Browser

    did = did_from_public_key(bytes(nacl.signing.SigningKey.generate().verify_key))
    service_type = "_dsnode-check._tcp.local."  # not the nodes' type: no running node sees it
    found = threading.Event()
    browser = Browser(["127.0.0.1"], lambda s: s.did == did and found.set(), service_type=service_type)
    advertiser = Advertiser(did, [], 9, "", ["127.0.0.1"], name="selftest", service_type=service_type)
    browser.start()
    try:
        advertiser.start()
        try:
            if not found.wait(WAIT):
                raise TimeoutError(f"the service was not seen on 127.0.0.1 within {WAIT:.0f} s")
        finally:
            advertiser.close()
    finally:
        browser.close()


def check_mqtt(home: Path, broker: str | None) -> None:
    from appliance.net.broker import EmbeddedBroker

    if broker:
        host, _, port = broker.rpartition(":")
        _round_trip(host.strip("[]") or "127.0.0.1", int(port))
        return
    embedded = EmbeddedBroker(None)  # open access, on loopback only, for the few seconds of the check
    port = embedded.start("127.0.0.1", 0)
    try:
        _round_trip("127.0.0.1", port)
    finally:
        embedded.stop()


def _round_trip(host: str, port: int) -> None:
    from appliance.net.mqtt import BrokerParams, Connected, ConnectRefused, Incoming, MqttConnection, Subscribed

    tag = secrets.token_hex(6)
    topic, payload = f"dsnode/selftest/{tag}", secrets.token_bytes(32)

    def connection(role: str) -> MqttConnection:
        conn = MqttConnection(BrokerParams(host, port, f"dsnode-selftest-{role}-{tag}", clean_start=True,
                                           session_expiry=0, connect_timeout=WAIT))
        conn.open()
        return conn

    def until(conn: MqttConnection, wanted: Callable[[object], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for event in conn.poll(0.05):
                if isinstance(event, ConnectRefused):
                    raise ConnectionRefusedError(f"the broker refused the connection: {event.reason}")
                if isinstance(event, Incoming):
                    conn.ack(event.mid, event.qos)
                if wanted(event):
                    return
        raise TimeoutError(f"{what} within {WAIT:.0f} s")

    receiver = connection("rx")
    try:
        until(receiver, lambda e: isinstance(e, Connected), f"no answer from {host}:{port}")
        receiver.subscribe([topic])
        until(receiver, lambda e: isinstance(e, Subscribed), "no subscription")
        sender = connection("tx")
        try:
            until(sender, lambda e: isinstance(e, Connected), f"no answer from {host}:{port}")
            mid = sender.publish(topic, payload)
            if not sender.wait_for_publish(mid, WAIT):
                raise TimeoutError("the broker did not acknowledge the message")
            until(receiver, lambda e: isinstance(e, Incoming) and e.topic == topic and e.payload == payload,
                  "the message did not come back")
            sender.disconnect()
        finally:
            sender.close()
        receiver.disconnect()
    finally:
        receiver.close()


def qt_present() -> bool:
    """PySide6 is part of this installation (the desktop build, or a checkout with the extra)."""
    import importlib.util

    try:
        return importlib.util.find_spec("PySide6") is not None
    except (ImportError, ValueError):
        return False


def check_qt(home: Path) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication.instance()
    if app is None:  # offscreen: the check needs no display, and shows nothing on one
        app = QApplication([sys.argv[0] if sys.argv else "dsnode", "-platform", "offscreen"])
        if app.platformName() != "offscreen":
            raise RuntimeError(f"Qt runs on {app.platformName()!r}, not offscreen")
    label = QLabel("dsnode")
    label.show()
    QTimer.singleShot(0, app.quit)
    app.exec()
    label.close()
    check_qr(home)


def check_qr(home: Path) -> None:
    """An invitation-sized text written as a QR picture (segno, as `operator invite --qr` does) is
    read back by the desktop app's reader (Qt and zxing-cpp), as joining from a QR picture does."""
    import segno

    from ui.qr import read_qr_text

    text = "DSI1-" + "selftest" * 100  # about the length of an invitation with a small CA certificate
    home.mkdir(parents=True, exist_ok=True)
    picture = home / "invitation-qr.png"
    segno.make(text, error="m", micro=False).save(str(picture), kind="png", scale=4, border=4)
    if read_qr_text(picture) != text:
        raise RuntimeError("the QR picture read back other text")


def checks(broker: str | None) -> list[tuple[str, Callable[[Path], None]]]:
    found = [("assets", check_assets), ("store", check_store), ("crypto", check_crypto), ("discovery", check_discovery),
             ("mqtt", lambda home: check_mqtt(home, broker))]
    if qt_present():
        found.append(("qt", check_qt))
    return found


def run(args, settings) -> int:
    failed = 0
    todo = checks(args.broker)
    with tempfile.TemporaryDirectory(prefix="dsnode-selftest-") as tmp:
        for name, check in todo:
            home = Path(tmp) / name
            label = t(f"selftest.check.{name}")
            try:
                check(home)
            except Exception as e:  # noqa: BLE001 - a failed check is the result being reported, not a crash
                failed += 1
                detail = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                print(t("selftest.failed", label, detail), flush=True)
            else:
                print(t("selftest.ok", label), flush=True)
    if not qt_present():
        print(t("selftest.no_qt"), flush=True)
    print(t("selftest.summary_failed", failed, len(todo)) if failed else t("selftest.summary_ok", len(todo)))
    return 1 if failed else 0


def register(sub) -> None:
    p = sub.add_parser("selftest", help=t("cli.selftest"), description=t("cli.selftest.description"))
    p.add_argument("--broker", metavar="HOST:PORT", help=t("cli.selftest.broker"))
    p.set_defaults(run=run, store_use=forward.INDEPENDENT)
