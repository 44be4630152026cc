"""What arrives on a node's lane (delivery chunks as binary frames through the broker): any bytes
at all, or a real frame with any one byte changed, cut or lengthened. ``lane.parse`` returns a
frame or the reason it is junk and never raises; a frame that parses opens under its transfer's key
only when it is the one sealed, byte for byte."""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from appliance.services.delivery import lane
from tests.fuzzing import fuzz

KEY = bytes(range(32))
AEAD = AESGCM(KEY)
TAG = lane.transfer_tag("urn:uuid:consumer-1")
DATA = bytes(range(256)) * 8
FRAME = lane.seal(AEAD, TAG, 7, 196608, DATA, nonce=b"\x01" * 12)
LIMIT = 256 * 1024
REASONS = {"header", "version", "size"}


def opened(frame: bytes) -> bytes | str:
    f = lane.parse(frame, LIMIT)
    if isinstance(f, str):
        assert f in REASONS
        return f
    assert 0 <= f.index < 2**32 and len(f.sealed) == f.length + lane.TAG and len(frame) <= LIMIT
    try:
        return AEAD.decrypt(f.nonce, f.sealed, f.header)
    except InvalidTag:
        return "key"


def test_the_frame_sealed_opens_to_its_part_with_its_place():
    f = lane.parse(FRAME, LIMIT)
    assert not isinstance(f, str) and (f.tag, f.index, f.offset, f.length) == (TAG, 7, 196608, len(DATA))
    assert opened(FRAME) == DATA


@fuzz
@given(st.binary(max_size=4096))
def test_any_bytes_are_junk_with_a_reason(data):
    assert opened(data) in REASONS | {"key"}


@fuzz
@given(st.integers(0, len(FRAME) - 1), st.integers(1, 255))
def test_a_frame_with_one_byte_changed_does_not_open(at, flip):
    spoiled = bytearray(FRAME)
    spoiled[at] ^= flip
    assert opened(bytes(spoiled)) in REASONS | {"key"}


@fuzz
@given(st.integers(0, len(FRAME) - 1), st.binary(min_size=1, max_size=64))
def test_a_frame_cut_or_lengthened_is_junk(cut, extra):
    assert opened(FRAME[:cut]) in REASONS | {"key"}
    assert opened(FRAME + extra) in REASONS | {"key"}


@fuzz
@given(st.dictionaries(st.text(max_size=4), st.one_of(st.none(), st.integers(), st.text(max_size=60)), max_size=3))
def test_a_lane_offer_gives_a_key_of_32_bytes_or_none(offer):
    key = lane.offered_key(offer)
    assert key is None or len(key) == 32


def test_a_frame_carries_up_to_192_kib_under_the_brokers_256_kib_limit():
    part = lane.part_size(LIMIT)
    assert part == 192 * 1024 and len(lane.seal(AEAD, TAG, 0, 0, bytes(part))) <= LIMIT
