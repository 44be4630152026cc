"""One-time invitations: the text code round-trips, and tampering, expiry and junk are refused."""

import json
import zlib
from datetime import datetime, timedelta, timezone

import pytest

from appliance.crypto.jcs import canonical
from appliance.crypto.keys import SigningKey
from appliance.errors import InvitationExpired, InvitationInvalid
from appliance.services.membership.invitation import (
    CODE_PREFIX, _b64url, check_invitation, decode_code, load_invitation, make_invitation,
    new_token, secret_hash, secret_matches,
)

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
OPERATOR = SigningKey.from_seed(bytes(range(32)))


def _invite(**over):
    token_id, secret, password = new_token()
    args = dict(space_id="shanghai-auto-parts", space_name="上海汽配数据空间", broker_host="broker.example",
                broker_port=8883, tls_ca_pem="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                token_id=token_id, token_secret=secret, join_password=password, org="示例制造",
                issued=NOW, valid_for=timedelta(days=7))
    args.update(over)
    return make_invitation(OPERATOR, **args)


def _recode(document: dict) -> str:
    return CODE_PREFIX + _b64url(zlib.compress(canonical(document)))


def test_a_code_round_trips_and_carries_what_a_node_needs():
    inv = _invite()
    code = inv.code()
    assert code.startswith("DSI1-") and len(code) < 1500
    got = load_invitation(code, now=NOW + timedelta(days=1))
    assert got.document == inv.document
    assert (got.space_id, got.operator_did, got.broker_host, got.broker_port) == (
        "shanghai-auto-parts", OPERATOR.did, "broker.example", 8883)
    assert got.join_username == f"join-{got.token_id}" and got.tls_ca_pem.startswith("-----BEGIN")


def test_a_code_split_over_lines_still_reads():
    code = _invite().code()
    wrapped = "\n".join(code[i:i + 60] for i in range(0, len(code), 60))
    assert load_invitation("  " + wrapped + "\n").space_id == "shanghai-auto-parts"


@pytest.mark.parametrize("field, value", [
    ("space", "another-space"), ("operator", SigningKey.generate().did), ("expires", "2099-01-01T00:00:00.000Z"),
    ("broker", {"host": "evil.example", "port": 8883, "tls_ca_pem": None}),
])
def test_a_changed_invitation_is_refused(field, value):
    doc = dict(_invite().document)
    doc[field] = value
    with pytest.raises(InvitationInvalid):
        load_invitation(_recode(doc))


def test_an_invitation_signed_by_someone_else_for_the_same_operator_is_refused():
    other = SigningKey.generate()
    forged = dict(_invite().document)
    forged.pop("sig")
    from appliance.crypto.statement import sign_statement

    with pytest.raises(InvitationInvalid, match="signature"):
        check_invitation(sign_statement(other, forged))


def test_an_expired_invitation_is_refused():
    inv = _invite(valid_for=timedelta(hours=1))
    with pytest.raises(InvitationExpired):
        load_invitation(inv.code(), now=NOW + timedelta(hours=2))


@pytest.mark.parametrize("junk", ["", "hello", "DSI1-", "DSI1-!!!!", "DSI1-" + _b64url(b"not zlib"),
                                  "DSI1-" + _b64url(zlib.compress(b"[1,2]")),
                                  "DSI1-" + _b64url(zlib.compress(b"{\"v\":1}")),
                                  "DSI1-" + _b64url(zlib.compress(b"\x00" * 2_000_000))])
def test_junk_codes_are_refused_cleanly(junk):
    with pytest.raises(InvitationInvalid):
        check_invitation(decode_code(junk))


def test_a_refused_invitation_is_said_in_the_readers_language():
    with pytest.raises(InvitationInvalid) as e:
        decode_code("DSI1-" + _b64url(b"not zlib"))
    assert "the code is damaged or incomplete; copy all of it" in e.value.message("en")
    assert e.value.message("zh_CN") == ("邀请无法使用：邀请码已损坏或不完整，请完整复制整段邀请码。"
                                        "请向数据空间运营方索取新的邀请。")
    forged = dict(_invite().document, org="别人")
    with pytest.raises(InvitationInvalid) as e:
        check_invitation(forged)
    assert "签名不符：邀请在运营方生成后被改动过" in e.value.message("zh_CN")


def test_a_file_with_the_code_or_the_json_works(tmp_path):
    inv = _invite()
    (tmp_path / "a.txt").write_text(inv.code() + "\n")
    (tmp_path / "b.json").write_text(json.dumps(inv.document, ensure_ascii=False))
    assert load_invitation(str(tmp_path / "a.txt")).token_id == inv.token_id
    assert load_invitation(str(tmp_path / "b.json")).token_id == inv.token_id
    with pytest.raises(InvitationInvalid):
        load_invitation(str(tmp_path / "missing.txt"))


def test_the_qr_image_is_a_png(tmp_path):
    _invite().write_qr(tmp_path / "invite.png")
    assert (tmp_path / "invite.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_operator_keeps_only_a_hash_of_the_secret():
    _, secret, _ = new_token()
    stored = secret_hash(secret)
    assert secret not in stored and secret_matches(secret, stored)
    assert not secret_matches(secret + "x", stored) and not secret_matches(None, stored)
