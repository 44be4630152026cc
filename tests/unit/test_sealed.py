"""Data sealed to a node's did:key opens only with that node's key."""

import pytest

from appliance.crypto.keys import SigningKey
from appliance.crypto.sealed import seal, unseal
from appliance.errors import MalformedDid, MalformedMessage

ALICE = SigningKey.from_seed(b"A" * 32)
BOB = SigningKey.from_seed(b"B" * 32)


def test_recipient_opens_what_was_sealed_to_it():
    box = seal(b"price list", BOB.did)
    assert box[0] == 1
    assert b"price list" not in box
    assert unseal(box, BOB) == b"price list"


def test_empty_plaintext_round_trips():
    assert unseal(seal(b"", BOB.did), BOB) == b""


def test_each_sealing_is_different():
    assert seal(b"x", BOB.did) != seal(b"x", BOB.did)


def test_another_node_cannot_open_it():
    with pytest.raises(MalformedMessage, match="another node"):
        unseal(seal(b"secret", BOB.did), ALICE)


@pytest.mark.parametrize("position", [1, 20, 40, -1])
def test_any_changed_byte_is_detected(position):
    box = bytearray(seal(b"secret", BOB.did))
    box[position] ^= 0x01
    with pytest.raises(MalformedMessage):
        unseal(bytes(box), BOB)


def test_unknown_version_is_refused():
    box = seal(b"secret", BOB.did)
    with pytest.raises(MalformedMessage, match="version 2"):
        unseal(b"\x02" + box[1:], BOB)


@pytest.mark.parametrize("junk", [b"", b"\x01", b"\x01" + bytes(47), b"\x01" + bytes(100)])
def test_short_or_junk_input_is_refused(junk):
    with pytest.raises(MalformedMessage):
        unseal(junk, BOB)


def test_sealing_to_a_bad_did_fails():
    with pytest.raises(MalformedDid):
        seal(b"x", "did:web:example.com")


def test_inner_version_must_match_the_outer_one():
    import nacl.public

    from appliance.crypto.keys import box_public_key_from_did

    inner = nacl.public.SealedBox(box_public_key_from_did(BOB.did)).encrypt(b"\x02secret")
    with pytest.raises(MalformedMessage, match="inner format version"):
        unseal(b"\x01" + inner, BOB)
