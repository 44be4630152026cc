"""Received envelopes and sealed bodies: any bytes either parse into a value that can be
canonicalised, hashed and stored, or are refused with MalformedMessage. A sealed body's plaintext
is held to exactly the same checks as the outer envelope."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.crypto import envelope, sealed
from appliance.crypto.jcs import canonical
from appliance.crypto.keys import SigningKey
from appliance.errors import BadSignature, MalformedMessage
from tests.fuzz.values import deep, dump, json_texts, json_values, mutations
from tests.fuzzing import scaled

KEY = SigningKey.from_seed(bytes(range(32)))
OTHER = SigningKey.from_seed(bytes(range(1, 33)))


def storable(value: object) -> None:
    """What the store and the hashing code do with a received value must work."""
    canonical(value)
    json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")


def sealed_envelope(plaintext: bytes) -> dict:
    body = {"sealed": base64.b64encode(sealed.seal(plaintext, KEY.did)).decode("ascii")}
    return envelope.sign_envelope(OTHER, from_did=OTHER.did, type="t", space="s", to=KEY.did, seq=1, body=body,
                                  ts="2026-11-22T10:00:00.000Z", id="m1")


REFUSED = object()


def opened_or_refused(plaintext: bytes) -> object:
    """The body sealed as the sync codec seals one (inside an object), opened; REFUSED if refused."""
    try:
        value = envelope.open_body(sealed_envelope(b'{"body":' + plaintext + b"}"), KEY)
    except MalformedMessage:
        return REFUSED
    storable(value)
    return value["body"]


def decoded_or_refused(data: bytes, *, as_body: bool = True) -> object:
    """The body of an envelope made of ``data``; REFUSED if refused."""
    try:
        value = envelope.decode(b'{"body":' + data + b"}" if as_body else data)
    except MalformedMessage:
        return REFUSED
    storable(value)
    return value["body"] if as_body else value


@scaled(800)
@given(json_texts())
def test_decode_accepts_only_storable_values(data):
    decoded_or_refused(data)
    decoded_or_refused(data, as_body=False)


@scaled(500)
@given(json_texts())
def test_a_sealed_body_is_checked_exactly_like_an_envelope(data):
    """The same bytes inside a sealed body and as an envelope's body: refused by both or by neither."""
    outer = decoded_or_refused(data)
    inner = opened_or_refused(data)
    assert (outer is REFUSED) == (inner is REFUSED)
    if outer is not REFUSED:
        assert outer == inner


@pytest.mark.parametrize("text", [
    b'{"a":"\\ud800"}', b'{"\\udfff":1}', b"[1e400]", b'{"n":' + b"1" * 5000 + b"}", b"[9007199254740992]",
    b"[" * 48 + b"]" * 48, b"[" * 3000 + b"]" * 3000, b'{"' + b"k" * 1025 + b'":1}',
])
def test_each_kind_of_unsafe_value_is_refused_inside_and_outside_the_seal(text):
    assert decoded_or_refused(text) is REFUSED
    assert opened_or_refused(text) is REFUSED


def test_values_at_the_limits_pass_inside_and_outside_the_seal():
    for text in [b"[9007199254740991,-9007199254740991]", b'["\\ud83d\\ude00"]', b"[1.5e300]",
                 json.dumps(deep(47)).encode()]:
        assert decoded_or_refused(text) == opened_or_refused(text) == json.loads(text)


@scaled(500)
@given(st.one_of(json_values(), st.text(max_size=40)))
def test_open_body_refuses_any_body_that_is_not_a_good_seal(body):
    env = envelope.sign_envelope(OTHER, from_did=OTHER.did, type="t", space="s", to=KEY.did, seq=1, body={"x": 1},
                                 ts="2026-11-22T10:00:00.000Z", id="m1")
    for candidate in (body, {"sealed": body}):
        try:
            opened = envelope.open_body({**env, "body": candidate}, KEY)
        except MalformedMessage:
            continue
        storable(opened)


_SIGNED = envelope.sign_envelope(OTHER, from_did=OTHER.did, type="dsnode.t", space="space-1", to=None, seq=7,
                                 body={"a": [1, "x", {"b": None}]}, ts="2026-11-22T10:00:00.123Z", id="m1")


@scaled(500)
@given(mutations(_SIGNED))
def test_a_changed_envelope_is_refused_with_the_documented_errors(env):
    try:
        envelope.verify_envelope(env)
    except (MalformedMessage, BadSignature):
        return
    storable(env)


@scaled(500)
@given(mutations(_SIGNED))
def test_a_changed_envelope_on_the_wire_is_refused_with_the_documented_errors(env):
    try:
        text = canonical(env)
    except ValueError:  # not even the sender could have written it canonically: write it as is
        text = dump(env).encode("utf-8", "surrogatepass")
    try:
        envelope.verify_envelope(envelope.decode(text))
    except (MalformedMessage, BadSignature):
        pass
