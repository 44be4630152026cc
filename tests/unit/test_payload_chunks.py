"""The provider's payload as it goes into the vault: chunk hashes and each object's SHA-256 computed
beside the blocks (payload.PartsChunker), a referenced source that changed since registration
refused; and the consumer's staging (sealed slots that open only in their place)."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from types import SimpleNamespace

import pytest

from appliance.errors import DeliveryError
from appliance.services.delivery import payload
from appliance.services.delivery.staging import SEAL, Staging

DATA = os.urandom(10_000)


class Resources:
    """What resource_stream asks of the resource service, for one referenced file."""

    def __init__(self, registered: bytes, now: bytes) -> None:
        self._sha, self._now = hashlib.sha256(registered).hexdigest(), now

    def version(self, rid, version):
        return SimpleNamespace(sensitive=(), sha256=self._sha)

    def open_bytes(self, rid, version):
        return io.BytesIO(self._now)


def _parts(resources, blocks: list[bytes] | None = None) -> list[payload.Part]:
    r = SimpleNamespace(id="r1", masking=[], kind="file")
    stream, masked, check = payload.resource_stream(resources, r, 1, "urn:uuid:a1")
    return [payload.Part("data", iter(blocks) if blocks is not None else stream, masked, check)]


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name == "dsnode-hashing"}


def test_the_chunks_of_blocks_of_any_size_are_hashed_and_the_blocks_pass_unchanged():
    blocks = [DATA[i:i + 777] for i in range(0, len(DATA), 777)]  # not aligned with the chunks
    chunker = payload.PartsChunker(_parts(Resources(DATA, DATA), blocks), 1024)
    assert b"".join(chunker) == DATA
    (entry,) = chunker.objects
    assert entry["chunks"] == [hashlib.sha256(DATA[i:i + 1024]).hexdigest() for i in range(0, len(DATA), 1024)]
    assert (entry["size"], entry["sha256"]) == (len(DATA), hashlib.sha256(DATA).hexdigest())
    assert not _threads(), "the hashing thread ended with the blocks"


def test_a_source_changed_since_registration_is_refused():
    changed = DATA[:-1] + bytes([DATA[-1] ^ 1])
    chunker = payload.PartsChunker(_parts(Resources(DATA, changed)), 1024)
    with pytest.raises(DeliveryError) as refused:
        b"".join(chunker)
    assert "r1" in refused.value.message("en")
    assert not _threads()


def test_a_consumer_that_stops_taking_blocks_ends_the_hashing_thread():
    stream = iter(payload.PartsChunker(_parts(Resources(DATA, DATA), [DATA[:5000], DATA[5000:]]), 1024))
    next(stream)
    stream.close()  # the vault failed, say: the generator is closed
    assert not _threads()


def test_a_staged_chunk_opens_only_in_its_own_slot_of_its_own_transfer(tmp_path):
    staging = Staging(tmp_path / "incoming", b"k" * 32)
    m = {"v": 1, "transferId": "urn:uuid:t1", "chunkSize": 1024, "chunks": ["x"] * 3, "size": 2500, "sha256": "x"}
    for i, piece in enumerate((DATA[:1024], DATA[1024:2048], DATA[2048:2500])):
        staging.keep("urn:uuid:t1", i, piece, 1024)
    assert b"".join(staging.chunks("urn:uuid:t1", m)) == DATA[:2500]
    path = staging.path("urn:uuid:t1")
    raw = bytearray(path.read_bytes())
    slot = 1024 + SEAL
    raw[0:slot], raw[slot:2 * slot] = raw[slot:2 * slot], raw[0:slot]  # two chunks swapped in place
    path.write_bytes(bytes(raw))
    assert list(staging.chunks("urn:uuid:t1", m))[:2] == [b"", b""]
    os.replace(path, staging.path("urn:uuid:t2"))  # another transfer's file
    assert list(staging.chunks("urn:uuid:t2", m))[2] == b""
