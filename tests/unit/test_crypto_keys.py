"""Node keys, did:key identifiers, signatures and multibase."""

import json
from pathlib import Path

import nacl.public
import pytest

from appliance.crypto.keys import (
    SigningKey,
    box_public_key_from_did,
    did_from_public_key,
    multibase_decode,
    multibase_encode,
    public_key_from_did,
    verify,
)
from appliance.errors import BadSignature, MalformedDid

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "w3c-vc-di-eddsa"
SEED = bytes(range(32))


def vector_key_pair():
    pair = json.loads((VECTORS / "keyPair.json").read_text())
    private = multibase_decode(pair["privateKeyMultibase"])
    return private, pair["publicKeyMultibase"]


def test_w3c_seed_gives_the_published_did():
    private, public_multibase = vector_key_pair()
    assert private[:2] == b"\x80\x26" and len(private) == 34  # multicodec ed25519-priv
    key = SigningKey.from_seed(private[2:])
    assert key.did == "did:key:" + public_multibase
    assert key.did == "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"


def test_key_round_trips_through_its_seed_and_did():
    key = SigningKey.from_seed(SEED)
    assert key.seed == SEED
    assert SigningKey.from_seed(key.seed).public_key == key.public_key
    assert key.did.startswith("did:key:z6Mk")
    assert public_key_from_did(key.did) == key.public_key
    assert did_from_public_key(key.public_key) == key.did


def test_generated_keys_differ():
    assert SigningKey.generate().did != SigningKey.generate().did


def test_repr_shows_no_key_material():
    key = SigningKey.from_seed(SEED)
    assert repr(key) == f"SigningKey({key.did})"
    assert SEED.hex() not in repr(key)


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33), "x" * 32])
def test_seed_must_be_32_bytes(seed):
    with pytest.raises(ValueError):
        SigningKey.from_seed(seed)


def test_did_url_with_matching_fragment_is_accepted():
    key = SigningKey.from_seed(SEED)
    fragment = key.did.removeprefix("did:key:")
    assert public_key_from_did(f"{key.did}#{fragment}") == key.public_key


def _did_of(raw: bytes) -> str:
    return "did:key:" + multibase_encode(raw)


PUB = SigningKey.from_seed(SEED).public_key
BAD_DIDS = [
    "",
    "did:web:example.com",
    "did:key:",
    "did:key:f" + PUB.hex(),  # base16 multibase, not base58btc
    "did:key:z0OIl",  # characters outside base58
    "did:key:z6Mkü",
    _did_of(b"\x12\x00" + PUB),  # another multicodec
    _did_of(b"\xec\x01" + PUB),  # X25519 key, not Ed25519
    _did_of(b"\xed\x01" + PUB[:31]),
    _did_of(b"\xed\x01" + PUB + b"\x00"),
    _did_of(b"\xed\x01" + PUB) + "#z6MkOther",
    _did_of(b"\xed\x01" + PUB) + "#",
    None,
    42,
]


@pytest.mark.parametrize("did", BAD_DIDS)
def test_malformed_did_rejected(did):
    with pytest.raises(MalformedDid):
        public_key_from_did(did)


def test_malformed_did_message_names_the_did():
    with pytest.raises(MalformedDid) as caught:
        public_key_from_did("did:web:example.com")
    assert "did:web:example.com" in str(caught.value)


def test_signature_verifies_and_fails_when_anything_changes():
    key = SigningKey.from_seed(SEED)
    signature = key.sign(b"hello")
    assert len(signature) == 64
    verify(key.public_key, b"hello", signature)  # no exception
    with pytest.raises(BadSignature, match="greeting"):
        verify(key.public_key, b"hellO", signature, what="greeting")
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    with pytest.raises(BadSignature):
        verify(key.public_key, b"hello", flipped)
    other = SigningKey.from_seed(bytes(32))
    with pytest.raises(BadSignature):
        verify(other.public_key, b"hello", signature)


@pytest.mark.parametrize("signature", [b"", bytes(63), bytes(65), "x" * 64])
def test_signature_of_wrong_shape_is_a_bad_signature(signature):
    with pytest.raises(BadSignature):
        verify(SigningKey.from_seed(SEED).public_key, b"hello", signature)


def test_public_key_of_wrong_length_is_a_bad_signature():
    key = SigningKey.from_seed(SEED)
    with pytest.raises(BadSignature):
        verify(key.public_key[:31], b"hello", key.sign(b"hello"))


def test_box_keys_derived_from_did_match():
    key = SigningKey.from_seed(SEED)
    private = key.box_private_key()
    assert isinstance(private, nacl.public.PrivateKey)
    assert bytes(box_public_key_from_did(key.did)) == bytes(private.public_key)


def test_multibase_round_trip_and_leading_zeros():
    for data in [b"", b"\x00\x00\x01", bytes(range(256))]:
        text = multibase_encode(data)
        assert text.startswith("z")
        assert multibase_decode(text) == data


@pytest.mark.parametrize(
    "text, reason",
    [("", "non-empty"), ("mAAAA", "only base58btc"), ("z0", "base58btc"), ("zü", "base58btc")],
)
def test_multibase_decode_errors_say_why(text, reason):
    with pytest.raises(ValueError, match=reason):
        multibase_decode(text)
