"""An invitation's QR image: one with a TLS CA certificate of usual size fits; one too long for any
QR code says so (and what to send instead) rather than failing inside the QR library."""

from __future__ import annotations

import base64
import random
import textwrap

import pytest

from appliance.errors import OperatorError
from appliance.services.membership.invitation import QR_MAX_BYTES
from tests.unit.test_invitation import _invite


def _pem(der_bytes: int) -> str:
    """A certificate-shaped PEM of ``der_bytes`` random bytes (random, so it compresses as a real one)."""
    body = base64.b64encode(random.Random(der_bytes).randbytes(der_bytes)).decode()
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(textwrap.wrap(body, 64)) + "\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize("der_bytes", [0, 450, 830, 1250])  # none; an EC P-256, RSA-2048, RSA-4096 CA
def test_an_invitation_with_a_usual_ca_certificate_fits_a_qr_code(tmp_path, der_bytes):
    invitation = _invite(tls_ca_pem=_pem(der_bytes) if der_bytes else None)
    invitation.write_qr(tmp_path / "invite.png")
    assert (tmp_path / "invite.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_invitation_too_long_for_a_qr_code_says_what_to_send_instead(tmp_path):
    invitation = _invite(tls_ca_pem=_pem(2000))  # a certificate far larger than an RSA-4096 one
    assert len(invitation.code()) > QR_MAX_BYTES
    with pytest.raises(OperatorError) as refused:
        invitation.write_qr(tmp_path / "invite.png")
    assert "too long for a QR code" in refused.value.message("en")
    assert "邀请文件" in refused.value.message("zh_CN")
    assert not (tmp_path / "invite.png").exists()
