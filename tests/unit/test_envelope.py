"""Signed envelopes of the space protocol: shape, signature, wire form and sealed bodies."""

import base64
import copy
import re
from datetime import datetime, timedelta, timezone

import pytest

from appliance.crypto.envelope import (
    FIELDS,
    decode,
    encode,
    format_ts,
    open_body,
    seal_body,
    sign_envelope,
    verify_envelope,
)
from appliance.crypto.keys import SigningKey, verify
from appliance.errors import BadSignature, MalformedMessage

ALICE = SigningKey.from_seed(b"A" * 32)
ALICE_ROTATED = SigningKey.from_seed(b"a" * 32)
BOB = SigningKey.from_seed(b"B" * 32)
MALLORY = SigningKey.from_seed(b"M" * 32)
TS = "2026-11-22T10:00:00.123Z"
ID = "0123456789abcdef0123456789abcdef"


def make(key=ALICE, from_did=None, **overrides):
    fields = dict(
        from_did=from_did or key.did,
        type="contract.request",
        space="space-1",
        to=BOB.did,
        seq=7,
        body={"offer": "o-1", "n": [1, 2.5, None]},
        ts=TS,
        id=ID,
    )
    fields.update(overrides)
    return sign_envelope(key, **fields)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_signed_envelope_has_exactly_the_protocol_fields_and_verifies():
    env = make()
    assert list(env) == list(FIELDS)
    assert env["v"] == 1 and env["from"] == env["kid"] == ALICE.did
    assert verify_envelope(env) == env


def test_signature_covers_the_canonical_bytes_including_v():
    env = make(body={"k": 1})
    signed = (
        '{"body":{"k":1},"from":"%s","id":"%s","kid":"%s","seq":7,"space":"space-1",'
        '"to":"%s","ts":"%s","type":"contract.request","v":1}'
        % (ALICE.did, ID, ALICE.did, BOB.did, TS)
    ).encode()
    sig = base64.urlsafe_b64decode(env["sig"] + "==")
    verify(ALICE.public_key, signed, sig)
    assert "=" not in env["sig"]


def test_signing_is_deterministic_for_fixed_inputs():
    assert make() == make()


def test_broadcast_envelope_has_null_to():
    env = make(to=None)
    assert env["to"] is None
    verify_envelope(env)


def test_defaults_give_a_fresh_id_and_the_current_time():
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    env = sign_envelope(ALICE, from_did=ALICE.did, type="t", space="s", to=None, seq=0, body=None)
    assert re.fullmatch(r"[0-9a-f]{32}", env["id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", env["ts"])
    stamped = datetime.strptime(env["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert before <= stamped <= datetime.now(timezone.utc)
    other = sign_envelope(ALICE, from_did=ALICE.did, type="t", space="s", to=None, seq=0, body=None)
    assert other["id"] != env["id"]


def test_format_ts_converts_to_utc_milliseconds():
    moment = datetime(2026, 11, 22, 18, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    assert format_ts(moment) == TS


TAMPERED = {
    "type": "contract.accept",
    "id": "fedcba9876543210fedcba9876543210",
    "space": "space-2",
    "from": BOB.did,
    "kid": MALLORY.did,
    "to": MALLORY.did,
    "seq": 8,
    "ts": "2026-11-22T10:00:00.124Z",
    "body": {"offer": "o-2", "n": [1, 2.5, None]},
}


@pytest.mark.parametrize("field", sorted(TAMPERED))
def test_changing_any_field_breaks_the_signature(field):
    env = make()
    env[field] = TAMPERED[field]
    with pytest.raises(BadSignature):
        verify_envelope(env)


def test_changing_the_version_is_refused():
    env = make()
    env["v"] = 2
    with pytest.raises(MalformedMessage, match="unsupported envelope version 2") as refused:
        verify_envelope(env)
    assert refused.value.message("zh_CN") == "无法读取消息：不支持的信封版本 2（本节点读取的是版本 1）"


@pytest.mark.parametrize("mutate", [
    lambda body: body.update(extra=True),
    lambda body: body["n"].append(3),
    lambda body: body.__setitem__("n", [1, 2.5000001, None]),
])
def test_changing_inside_the_body_breaks_the_signature(mutate):
    env = make()
    mutate(env["body"])
    with pytest.raises(BadSignature):
        verify_envelope(env)


def test_changing_the_signature_bytes_is_detected():
    env = make()
    raw = bytearray(base64.urlsafe_b64decode(env["sig"] + "=="))
    raw[10] ^= 0x80
    env["sig"] = b64url(bytes(raw))
    with pytest.raises(BadSignature, match=f"message {ID} from {ALICE.did}"):
        verify_envelope(env)


def test_signature_by_a_different_key_fails():
    forged = make(key=MALLORY, from_did=ALICE.did)  # Mallory claims to be Alice
    with pytest.raises(BadSignature):
        verify_envelope(forged)
    forged["kid"] = ALICE.did  # and claims Alice's key signed it
    with pytest.raises(BadSignature):
        verify_envelope(forged)


# --- key rotation: from stays the inception DID, kid names the current key ----------------


ALICE_KEYS = {ALICE.did: ALICE.public_key, ALICE_ROTATED.did: ALICE_ROTATED.public_key}


def resolve_alice(from_did, kid):
    if from_did != ALICE.did or kid not in ALICE_KEYS:
        raise BadSignature(f"a message from {from_did} (unknown key {kid})")
    return ALICE_KEYS[kid]


def test_rotated_key_verifies_through_the_resolver():
    env = make(key=ALICE_ROTATED, from_did=ALICE.did)
    assert env["from"] == ALICE.did and env["kid"] == ALICE_ROTATED.did
    verify_envelope(env, resolve_key=resolve_alice)


def test_default_resolver_refuses_kid_other_than_from():
    env = make(key=ALICE_ROTATED, from_did=ALICE.did)
    with pytest.raises(BadSignature):
        verify_envelope(env)


def test_swapping_kid_to_another_key_of_the_same_node_fails():
    env = make(key=ALICE_ROTATED, from_did=ALICE.did)
    env["kid"] = ALICE.did
    with pytest.raises(BadSignature):
        verify_envelope(env, resolve_key=resolve_alice)


# --- shape -----------------------------------------------------------------------------------


def test_unknown_extra_field_is_rejected():
    env = make()
    env["prio"] = 1
    with pytest.raises(MalformedMessage, match="unknown field 'prio'"):
        verify_envelope(env)


@pytest.mark.parametrize("field", FIELDS)
def test_missing_field_is_rejected(field):
    env = make()
    del env[field]
    with pytest.raises(MalformedMessage, match=f"'{field}' is missing"):
        verify_envelope(env)


WRONG_TYPES = [
    ("v", "1"), ("v", True), ("v", 1.0),
    ("type", ""), ("type", 5), ("type", "x" * 257),
    ("id", None), ("space", ["s"]),
    ("from", "alice"), ("from", None), ("kid", "did:web:example.com"),
    ("to", "bob"), ("to", 0),
    ("seq", "7"), ("seq", -1), ("seq", 7.0), ("seq", True), ("seq", 2**53),
    ("ts", "2026-11-22T10:00:00Z"), ("ts", "2026-11-22 10:00:00.123Z"),
    ("ts", "2026-11-22T10:00:00.123+08:00"), ("ts", "2026-02-30T10:00:00.123Z"), ("ts", 0),
    ("body", {"big": 2**60}), ("body", float("nan")),
    ("sig", None), ("sig", "not base64!"), ("sig", "AAAA"), ("sig", "A" * 85 + "=="),
]


@pytest.mark.parametrize("field, value", WRONG_TYPES)
def test_wrong_type_is_rejected_naming_the_field(field, value):
    env = make()
    env[field] = value
    with pytest.raises(MalformedMessage, match=f"'{field}'"):
        verify_envelope(env)


@pytest.mark.parametrize("thing", [None, [], "envelope", 42])
def test_non_object_is_rejected(thing):
    with pytest.raises(MalformedMessage):
        verify_envelope(thing)


def test_non_canonical_base64_signature_spelling_is_rejected():
    env = make()
    last = env["sig"][-1]
    # 64 bytes -> 86 chars; the last char carries 4 unused bits, which must be zero.
    twin = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = twin.index(last)
    env["sig"] = env["sig"][:-1] + twin[index + 1]
    with pytest.raises(MalformedMessage, match="'sig' is not valid base64url") as refused:
        verify_envelope(env)
    assert refused.value.message("zh_CN") == "无法读取消息：字段 'sig' 不是有效的无填充 base64url 编码"


@pytest.mark.parametrize("overrides", [
    {"seq": -1}, {"to": "bob"}, {"ts": "yesterday"}, {"type": ""}, {"body": {"n": 2**60}},
])
def test_signing_refuses_to_build_a_malformed_envelope(overrides):
    with pytest.raises(ValueError):
        make(**overrides)


# --- wire form -------------------------------------------------------------------------------


def test_encode_decode_round_trip_still_verifies():
    env = make()
    data = encode(env)
    assert data.startswith(b'{"body":')
    assert verify_envelope(decode(data)) == env


def test_decode_rejects_oversize():
    data = encode(make(body="x" * 300_000))
    with pytest.raises(MalformedMessage, match="limit"):
        decode(data)
    with pytest.raises(MalformedMessage, match="limit of 100"):
        decode(encode(make()), max_size=100)


@pytest.mark.parametrize("junk", [
    b"", b"\xff\xfe", b"{", b"not json", b"[1, 2]", b'"text"', b"3", b"null",
    b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1, "a": 2}',
])
def test_decode_rejects_junk(junk):
    with pytest.raises(MalformedMessage):
        decode(junk)


def test_a_repeated_key_is_named_in_the_users_language():
    with pytest.raises(MalformedMessage, match=r"not valid JSON \(an object has a repeated key\)") as refused:
        decode(b'{"a": 1, "a": 2}')
    assert refused.value.message("zh_CN") == "无法读取消息：消息不是有效的 JSON（某个对象有重复的键）"


def test_decode_rejects_absurd_nesting():
    with pytest.raises(MalformedMessage):
        decode(b"[" * 100_000 + b"]" * 100_000)


# --- sealed bodies ---------------------------------------------------------------------------


def test_sealed_body_opens_only_for_the_recipient():
    secret = {"price": "12.50", "rows": [1, 2, 3]}
    env = make(body=seal_body(secret, BOB.did))
    assert set(env["body"]) == {"sealed"}
    assert b"12.50" not in encode(env)
    verified = verify_envelope(decode(encode(env)))
    assert open_body(verified, BOB) == secret
    with pytest.raises(MalformedMessage):
        open_body(verified, ALICE)
    with pytest.raises(MalformedMessage):
        open_body(verified, MALLORY)


def test_swapping_the_sealed_body_breaks_the_signature():
    env = make(body=seal_body({"price": "12.50"}, BOB.did))
    env["body"] = seal_body({"price": "0.01"}, BOB.did)
    with pytest.raises(BadSignature):
        verify_envelope(env)


@pytest.mark.parametrize("body", [
    {"price": 1}, {"sealed": 5}, {"sealed": "!!!"}, {"sealed": "AAAA", "extra": 1}, "sealed",
    {"sealed": base64.b64encode(b"\x01" + bytes(80)).decode()},
])
def test_open_body_rejects_bodies_that_are_not_sealed_to_us(body):
    env = copy.deepcopy(make())
    env["body"] = body
    with pytest.raises(MalformedMessage):
        open_body(env, BOB)


def test_timestamp_digits_must_be_ascii():
    env = make()
    env["ts"] = "٢٠٢٦-11-22T10:00:00.123Z"  # Arabic-Indic digits
    with pytest.raises(MalformedMessage, match="'ts'"):
        verify_envelope(env)
