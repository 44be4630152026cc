"""`dsnode operator invite --qr`: the QR image of an invitation, and an invitation too long for any
QR code (a space whose TLS CA certificate is very long), which is still made and printed before
the command says why there is no image."""

from __future__ import annotations

import datetime
import secrets

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.conftest import Cli


def _ca(path, names: int) -> None:
    """A CA certificate naming ``names`` random broker host names (each one makes it longer)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dsnode test space CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now)
               .not_valid_after(now + datetime.timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(f"{secrets.token_hex(12)}.example") for _ in range(names)]), critical=False)
    path.write_bytes(builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))


@pytest.fixture
def operator(tmp_path):
    key = tmp_path / "operator.key"
    key.write_text("operator passphrase 2026\n")
    key.chmod(0o600)
    return Cli(tmp_path / "operator", key)


@pytest.mark.parametrize("names, fits", [(0, True), (60, False)])
def test_an_invitation_qr_image_or_why_there_is_none(operator, tmp_path, names, fits):
    _ca(tmp_path / "ca.pem", names)
    operator.run("operator", "init", "--space", "qr-space", "--name", "二维码空间", "--broker-host", "127.0.0.1",
                 "--broker-port", "8883", "--tls-ca", str(tmp_path / "ca.pem"), "--kdf", "minimum")
    image = tmp_path / "invite.png"
    proc = operator.run("operator", "invite", "--out", str(tmp_path / "invite.txt"), "--qr", str(image), ok=fits)
    code = proc.stdout.strip().splitlines()[-1]
    assert code.startswith("DSI1-"), "the code is the last line either way"
    assert (tmp_path / "invite.txt").read_text().strip() == code, "and the invitation file is written"
    if fits:
        assert image.read_bytes()[:4] == b"\x89PNG"
        return
    assert proc.returncode == 100 and "Traceback" not in proc.stderr
    assert "too long for a QR code" in proc.stderr and "invitation file" in proc.stderr
    assert not image.exists()
