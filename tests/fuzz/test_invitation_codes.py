"""Invitation codes as a user pastes them, or a file holds them: a genuine invitation with one field
changed to any JSON value and signed again by its operator (so the checks after the signature are
reached), any JSON text packed as a code, and damaged codes. Each loads, or is refused with
InvitationInvalid or InvitationExpired; nothing else comes out."""

from __future__ import annotations

import base64
import zlib
from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from appliance.crypto.keys import SigningKey
from appliance.crypto.statement import sign_statement
from appliance.errors import ApplianceError, InvitationExpired, InvitationInvalid
from appliance.services.membership import invitation as inv
from tests.fuzz.values import dump, json_texts, json_values, mutations
from tests.fuzzing import scaled

KEY = SigningKey.from_seed(bytes(range(32)))
NOW = datetime(2026, 1, 2, tzinfo=timezone.utc)
GENUINE = inv.make_invitation(KEY, space_id="shanghai-parts", space_name="上海零件", broker_host="broker.example",
                              broker_port=8883, tls_ca_pem=None, token_id="00" * 8, token_secret="secret",
                              join_password="password", org="示例", issued=NOW, valid_for=timedelta(days=7))
UNSIGNED = {k: v for k, v in GENUINE.document.items() if k != "sig"}


def packed(text: bytes) -> str:
    return inv.CODE_PREFIX + base64.urlsafe_b64encode(zlib.compress(text)).rstrip(b"=").decode()


def _loaded_or_refused(code: str) -> None:
    try:
        invitation = inv.load_invitation(code, now=NOW)
    except (InvitationInvalid, InvitationExpired) as e:
        assert e.message("en") and e.message("zh_CN")
        return
    assert isinstance(invitation.broker_port, int) and isinstance(invitation.space_id, str)


def test_the_genuine_code_loads():
    assert inv.load_invitation(GENUINE.code(), now=NOW).space_id == "shanghai-parts"


@scaled(800)
@given(doc=mutations(UNSIGNED, json_values(8)))
def test_a_changed_invitation_signed_again_is_loaded_or_refused(doc):
    try:
        signed = sign_statement(KEY, doc) if isinstance(doc, dict) else doc
    except (ApplianceError, ValueError, TypeError):  # the operator's side refuses to sign it: still try it
        signed = {**doc, "sig": "AAAA"} if isinstance(doc, dict) else doc
    _loaded_or_refused(packed(dump(signed).encode("utf-8", "surrogatepass")))


@scaled(600)
@given(text=json_texts())
def test_any_json_packed_as_a_code_is_refused(text):
    _loaded_or_refused(packed(text))


@scaled(600)
@given(data=st.data())
def test_a_damaged_code_is_refused(data):
    code = GENUINE.code()
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(len(inv.CODE_PREFIX), len(code)))
        piece = data.draw(st.sampled_from(["A", "=", "-", "_", " ", "\n", "é", "١", "+", "/"]) | st.text(max_size=3))
        code = code[:at] + piece + code[at + data.draw(st.integers(0, 3)):]
    _loaded_or_refused(code)
