"""The provider's signed manifest and the consumer's signed receipt, without a network."""

from __future__ import annotations

import hashlib
import io

import pytest

from appliance.crypto.keys import SigningKey
from appliance.errors import ChunkCorrupt, DeliveryError, ManifestInvalid, ReceiptInvalid
from appliance.services.delivery import manifest as manifests

PROVIDER, CONSUMER = SigningKey.from_seed(b"p" * 32), SigningKey.from_seed(b"c" * 32)
DATA = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(160)) + b"tail"  # five chunks of 1024, one of 4


def _manifest(data: bytes = DATA, chunk_size: int = 1024, **changes) -> dict:
    hashes, size, sha256 = manifests.chunk_hashes(io.BytesIO(data), chunk_size)
    fields = dict(transfer_id="urn:uuid:t1", agreement_id="urn:uuid:a1", resource_id="urn:uuid:r1", version=3,
                  chunk_size=chunk_size, chunk_hashes=hashes, size=size, sha256=sha256, masked=True,
                  created="2026-12-03T10:00:00.000Z", masking_rules=["phone:mask-middle"])
    return manifests.build_manifest(**{**fields, **changes})


class Trickle(io.RawIOBase):
    """A stream that returns at most 100 bytes a read, as a pipe or a socket may."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(min(len(buffer), 100))
        buffer[:len(chunk)] = chunk
        return len(chunk)


def test_chunk_hashes_are_the_sha256_of_each_chunk_and_of_the_whole():
    hashes, size, whole = manifests.chunk_hashes(io.BytesIO(DATA), 1024)
    assert size == len(DATA) and whole == hashlib.sha256(DATA).hexdigest()
    assert hashes == [hashlib.sha256(DATA[i:i + 1024]).hexdigest() for i in range(0, len(DATA), 1024)]
    assert manifests.chunk_hashes(Trickle(DATA), 1024) == (hashes, size, whole)  # short reads are not chunks
    assert manifests.chunk_hashes(io.BytesIO(DATA[:2048]), 1024)[0] == hashes[:2]  # exact multiple: no empty chunk
    assert manifests.chunk_hashes(io.BytesIO(b""), 1024) == ([], 0, hashlib.sha256(b"").hexdigest())
    with pytest.raises(ValueError):
        manifests.chunk_hashes(io.BytesIO(DATA), 10)


def test_a_signed_manifest_verifies_and_its_chunks_check():
    doc = _manifest()
    (obj,) = doc["objects"]
    assert doc["v"] == 2 and obj["name"] == "data" and obj["size"] == doc["size"] == len(DATA)
    assert obj["chunks"][-1] == hashlib.sha256(b"tail").hexdigest() and doc["maskingRules"] == ["phone:mask-middle"]
    signature = manifests.sign(PROVIDER, doc)
    manifests.verify_manifest(doc, signature, PROVIDER.did)
    assert manifests.chunk_total(doc) == 6
    for index in range(6):
        manifests.check_chunk(doc, index, DATA[index * 1024:(index + 1) * 1024])
    assert manifests.chunk_length(doc, 5) == 4
    empty = _manifest(b"")
    manifests.verify_manifest(empty, manifests.sign(PROVIDER, empty), PROVIDER.did)


def test_a_tampered_manifest_or_another_signer_is_refused():
    doc = _manifest()
    signature = manifests.sign(PROVIDER, doc)
    tampered = {**doc, "masked": False}
    with pytest.raises(ManifestInvalid, match="does not verify") as caught:
        manifests.verify_manifest(tampered, signature, PROVIDER.did)
    assert caught.value.exit_code == 152
    assert caught.value.message("en") == (
        "The manifest of transfer urn:uuid:t1 cannot be accepted: the signature does not verify (forged or altered). "
        "Nothing of it is kept as received data; ask the provider to deliver again.")
    zh = caught.value.message("zh_CN")
    assert zh.startswith("传输 urn:uuid:t1 的交付清单无法接受：签名验证失败（被伪造或被篡改）。")
    chunks = doc["objects"][0]["chunks"]
    swapped = {**doc, "objects": [{**doc["objects"][0], "chunks": [chunks[1], chunks[0], *chunks[2:]]}]}
    with pytest.raises(ManifestInvalid, match="does not verify"):
        manifests.verify_manifest(swapped, signature, PROVIDER.did)
    with pytest.raises(ManifestInvalid, match=f"signed by '{CONSUMER.did}', not by {PROVIDER.did}"):
        manifests.verify_manifest(doc, manifests.sign(CONSUMER, doc), PROVIDER.did)
    forged = {**manifests.sign(CONSUMER, doc), "verificationMethod": PROVIDER.did}
    with pytest.raises(ManifestInvalid, match="does not verify"):
        manifests.verify_manifest(doc, forged, PROVIDER.did)
    for missing in (None, {}, "sig", {"verificationMethod": 7}):
        with pytest.raises(ManifestInvalid, match="no signature by"):
            manifests.verify_manifest(doc, missing, PROVIDER.did)
    with pytest.raises(ManifestInvalid, match="does not verify"):
        manifests.verify_manifest(doc, {**signature, "signature": "not base64!"}, PROVIDER.did)


def test_a_manifest_that_does_not_add_up_is_refused_before_its_signature_is_checked():
    doc = _manifest()
    obj, chunks = doc["objects"][0], doc["objects"][0]["chunks"]

    def one(**changes):
        return {**doc, "objects": [{**obj, **changes}]}

    broken = {
        "chunks": (one(chunks=chunks[:-1]), "lists 5 chunks for 5124 bytes in chunks of 1024 bytes"),
        "hash": (one(chunks=[*chunks[:-1], "XYZ"]), r"read \(chunks\)"),
        "object sha256": (one(sha256="00"), r"read \(sha256\)"),
        "object name": (one(name="../etc/passwd"), r"read \(name\)"),
        "absolute name": (one(name="/etc/passwd"), r"read \(name\)"),
        "object size": (one(size=5000), "lists 6 chunks for 5000 bytes"),
        "no objects": ({**doc, "objects": []}, r"read \(objects\)"),
        "sizes": ({**doc, "size": 1}, r"read \(objects\)"),
        "two names": ({**doc, "objects": [obj, obj], "size": 2 * doc["size"]}, r"read \(objects\)"),
        "sha256": ({**doc, "sha256": "00"}, r"read \(sha256\)"),
        "size type": ({**doc, "size": "5124"}, r"read \(size\)"),
        "bool size": ({**doc, "size": True}, r"read \(size\)"),
        "missing": ({k: v for k, v in doc.items() if k != "agreementId"}, r"read \(agreementId\)"),
        "type": ({**doc, "@type": "dsnode:DeliveryReceipt"}, r"read \(@type\)"),
        "version": ({**doc, "v": 3}, "of version 3, and this node reads version 1, 2"),
        "chunk size": ({**doc, "chunkSize": 10}, "chunk size of 10 bytes is not between 1024 and 16777216"),
        "rules": ({**doc, "maskingRules": [1]}, r"read \(maskingRules\)"),
        "not a dict": ([doc], r"read \(a list\)"),
    }
    for name, (bad, reason) in broken.items():
        with pytest.raises(ManifestInvalid, match=reason):
            manifests.verify_manifest(bad, manifests.sign(PROVIDER, doc), PROVIDER.did)
        assert name


def test_a_chunk_with_the_wrong_hash_or_length_is_refused():
    doc = _manifest()
    wrong = bytes(1024)
    with pytest.raises(ChunkCorrupt) as caught:
        manifests.check_chunk(doc, 1, wrong)
    assert caught.value.exit_code == 154
    assert caught.value.message("en").startswith(
        f"Chunk 1 of transfer urn:uuid:t1 does not match the manifest: its SHA-256 is "
        f"{hashlib.sha256(wrong).hexdigest()}, and the manifest says {doc['objects'][0]['chunks'][1]}.")
    assert caught.value.message("zh_CN").startswith("传输 urn:uuid:t1 的第 1 块与清单不符：该块的 SHA-256 为")
    with pytest.raises(ChunkCorrupt, match="it has 1025 bytes, and the manifest says 1024"):
        manifests.check_chunk(doc, 0, DATA[:1025])  # a peer sending more than the manifest says
    with pytest.raises(ChunkCorrupt, match="it has 1024 bytes, and the manifest says 4"):
        manifests.check_chunk(doc, 5, DATA[:1024])
    with pytest.raises(ChunkCorrupt, match=r"no such chunk \(it lists 6\)"):
        manifests.check_chunk(doc, 6, b"")
    with pytest.raises(ChunkCorrupt, match="no such chunk"):
        manifests.check_chunk(doc, -1, b"")


def test_a_signed_receipt_verifies_against_its_manifest():
    doc = _manifest()
    signature = manifests.sign(PROVIDER, doc)
    receipt = manifests.build_receipt(doc, signature, consumer_did=CONSUMER.did, received="2026-12-03T10:01:00.000Z",
                                      sha256=doc["sha256"])
    assert receipt["manifest"] == manifests.manifest_hash(doc)
    assert receipt["providerSignature"] == signature["signature"]
    receipt_signature = manifests.sign(CONSUMER, receipt)
    manifests.verify_receipt(receipt, receipt_signature, CONSUMER.did, doc)
    # a manifest signature does not pass for a receipt's, nor the other way round
    with pytest.raises(ReceiptInvalid, match="does not verify"):
        manifests.verify_receipt(receipt, {**signature, "verificationMethod": CONSUMER.did}, CONSUMER.did, doc)
    with pytest.raises(ManifestInvalid):
        manifests.verify_manifest(receipt, {**receipt_signature, "verificationMethod": PROVIDER.did}, PROVIDER.did)


def test_a_tampered_receipt_another_signer_or_another_manifest_is_refused():
    doc = _manifest()
    receipt = manifests.build_receipt(doc, manifests.sign(PROVIDER, doc), consumer_did=CONSUMER.did,
                                      received="2026-12-03T10:01:00.000Z", sha256=doc["sha256"])
    signature = manifests.sign(CONSUMER, receipt)
    with pytest.raises(ReceiptInvalid, match="does not verify") as caught:
        manifests.verify_receipt({**receipt, "received": "2026-12-04T00:00:00.000Z"}, signature, CONSUMER.did, doc)
    assert caught.value.exit_code == 153
    assert caught.value.message("zh_CN").startswith("传输 urn:uuid:t1 的回执无法接受：签名验证失败")
    other = manifests.sign(SigningKey.from_seed(b"x" * 32), receipt)
    with pytest.raises(ReceiptInvalid, match="signed by"):
        manifests.verify_receipt(receipt, other, CONSUMER.did, doc)
    with pytest.raises(ReceiptInvalid, match="names 'did:key:zOther' as the consumer"):
        manifests.verify_receipt({**receipt, "consumer": "did:key:zOther"}, signature, CONSUMER.did, doc)
    with pytest.raises(ReceiptInvalid, match="confirms another manifest"):
        manifests.verify_receipt(receipt, signature, CONSUMER.did, _manifest(DATA[:-1]))
    with pytest.raises(ReceiptInvalid, match="confirms data with SHA-256 '00"):
        manifests.verify_receipt({**receipt, "sha256": "00" * 32}, signature, CONSUMER.did, doc)
    with pytest.raises(ReceiptInvalid, match=r"read \(providerSignature\)"):
        manifests.verify_receipt({**receipt, "providerSignature": None}, signature, CONSUMER.did, doc)


def test_no_receipt_is_made_for_data_that_differs_from_the_manifest():
    doc = _manifest()
    with pytest.raises(DeliveryError, match="the data received has SHA-256 00") as caught:
        manifests.build_receipt(doc, manifests.sign(PROVIDER, doc), consumer_did=CONSUMER.did,
                                received="2026-12-03T10:01:00.000Z", sha256="00" * 32)
    assert caught.value.message("zh_CN").startswith("交付无法继续：收到的数据 SHA-256 为 00")


def test_a_manifest_must_list_one_hash_a_chunk():
    with pytest.raises(ValueError):
        _manifest(chunk_hashes=["00" * 32])


FILES = {"a/readme.txt": b"hello " * 300, "a/b/empty": b"", "data.bin": DATA}  # 2 + 0 + 6 chunks of 1024


def _objects(files=FILES, chunk_size: int = 1024) -> dict:
    objects = []
    for name, data in files.items():
        hashes, size, sha256 = manifests.chunk_hashes(io.BytesIO(data), chunk_size)
        objects.append({"name": name, "size": size, "sha256": sha256, "chunks": hashes})
    whole = b"".join(files.values())
    return manifests.build_manifest(transfer_id="urn:uuid:t2", agreement_id="urn:uuid:a1", resource_id="urn:uuid:f",
                                    version=1, chunk_size=chunk_size, objects=objects, size=len(whole),
                                    sha256=hashlib.sha256(whole).hexdigest(), masked=False,
                                    created="2026-12-03T10:00:00.000Z")


def test_a_manifest_of_many_objects_numbers_their_chunks_one_after_the_other():
    doc = _objects()
    manifests.verify_manifest(doc, manifests.sign(PROVIDER, doc), PROVIDER.did)
    assert [o["name"] for o in doc["objects"]] == list(FILES) and doc["size"] == sum(map(len, FILES.values()))
    where = manifests.Layout(doc)
    assert where.total == manifests.chunk_total(doc) == 8
    assert [list(where.chunks_of(k)) for k in range(3)] == [[0, 1], [], [2, 3, 4, 5, 6, 7]]
    assert (where.length(1), where.offset(1), where.object_of(1)) == (1800 - 1024, 1024, 0)
    assert (where.offset(2), where.length(7), where.object_of(7)) == (1800, 4, 2)
    whole = b"".join(FILES.values())
    for i in range(where.total):  # each chunk is the object's slice, found at its offset in the whole
        manifests.check_chunk(where, i, whole[where.offset(i):where.offset(i) + where.length(i)])
    with pytest.raises(ChunkCorrupt, match="it has 1024 bytes, and the manifest says 776"):
        manifests.check_chunk(doc, 1, DATA[:1024])  # object 0's last chunk is shorter: chunks never span objects


def test_objects_named_outside_the_delivery_cannot_be_listed():
    for bad in ("../x", "/abs", "a//b", "a/./b", "c:\\x", "", "tab\there"):
        with pytest.raises(ValueError):
            _objects({bad: b"x"})
    with pytest.raises(ValueError):
        manifests.build_manifest(transfer_id="t", agreement_id="a", resource_id="r", version=1, chunk_size=1024,
                                 objects=[{"name": "x", "size": 1, "sha256": "00" * 32, "chunks": ["00" * 32]}],
                                 size=2, sha256="00" * 32, masked=False, created="now")


def test_a_version_1_manifest_of_a_stored_transfer_is_still_read():
    hashes, size, sha256 = manifests.chunk_hashes(io.BytesIO(DATA), 1024)
    old = {"@type": "dsnode:DeliveryManifest", "v": 1, "transferId": "urn:uuid:t0", "agreementId": "urn:uuid:a1",
           "resource": "urn:uuid:r1", "version": 1, "chunkSize": 1024, "chunks": hashes, "size": size,
           "sha256": sha256, "masked": False, "maskingRules": [], "created": "2026-11-01T10:00:00.000Z"}
    manifests.verify_manifest(old, manifests.sign(PROVIDER, old), PROVIDER.did)
    assert manifests.chunk_total(old) == 6 and manifests.objects(old)[0]["size"] == len(DATA)
    manifests.check_chunk(old, 5, b"tail")
    receipt = manifests.build_receipt(old, manifests.sign(PROVIDER, old), consumer_did=CONSUMER.did,
                                      received="2026-11-01T10:01:00.000Z", sha256=sha256)
    manifests.verify_receipt(receipt, manifests.sign(CONSUMER, receipt), CONSUMER.did, old)
