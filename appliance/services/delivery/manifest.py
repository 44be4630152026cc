"""The manifest the provider signs for what it delivers, and the receipt the consumer signs for it.

A manifest names the transfer, the agreement, the resource version, the chunk size and the objects
delivered (version 2): a file is one object, a folder or several resources are many, each with its
name, size, SHA-256 and the SHA-256 of each of its chunks (of the bytes as delivered: masked already,
when the agreement asks for masking). ``size`` and ``sha256`` at the top are those of all objects'
bytes one after the other, in the manifest's order. Chunks are numbered across the objects, from 0
(object 0's chunks first); ``Layout`` maps such a number to its object, its place and its length.
Version 1 (one object: ``chunks`` at the top, no ``objects``) is still read, as a stored transfer
made before version 2 holds it.

The consumer checks each chunk as it arrives (``check_chunk``: a damaged or reordered chunk is
fetched again) and each object at the end; then it signs a receipt that binds the manifest (its JCS
SHA-256), the provider's signature and the SHA-256 it computed itself over all the objects.

Signatures are detached Ed25519 over the RFC 8785 (JCS) form, by the signer's node key, as the
agreement's are (contracts/agreement.py). Both documents carry their ``@type`` and a version
``v``, and both are inside what is signed, so neither can pass for the other or for an agreement.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol

from appliance.crypto.jcs import canonical
from appliance.crypto.keys import SigningKey, public_key_from_did, verify as verify_sig
from appliance.errors import (ApplianceError, ChunkCorrupt, DeliveryError, LocalText, ManifestInvalid,
                              ReceiptInvalid, shown)

VERSION = 2  # the manifest's; version 1 is still read (READS)
READS = (1, 2)
RECEIPT_VERSION = 1
MANIFEST_TYPE = "dsnode:DeliveryManifest"
RECEIPT_TYPE = "dsnode:DeliveryReceipt"
SIGNATURE_TYPE = "Ed25519Signature2020-jcs"
MIN_CHUNK_SIZE = 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024
_HEX = re.compile(r"[0-9a-f]{64}")
_public_key = lru_cache(maxsize=256)(public_key_from_did)  # a pure function of the DID; errors are not cached

class Readable(Protocol):
    """A binary stream (a file, a pipe, the masking engine's output)."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...


_MANIFEST_FIELDS: dict[str, type | tuple[type, ...]] = {
    "@type": str, "v": int, "transferId": str, "agreementId": str, "resource": str, "version": (str, int),
    "chunkSize": int, "size": int, "sha256": str, "masked": bool, "maskingRules": list, "created": str,
}
_OBJECT_FIELDS: dict[str, type | tuple[type, ...]] = {"name": str, "size": int, "sha256": str, "chunks": list}
MAX_NAME = 1024  # an object's name: a relative POSIX path
_RECEIPT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "@type": str, "v": int, "transferId": str, "agreementId": str, "manifest": str, "providerSignature": str,
    "consumer": str, "received": str, "size": int, "sha256": str,
}


def digest(data: bytes | memoryview) -> str:
    """The SHA-256 of ``data`` as the manifest writes it (lowercase hex)."""
    return hashlib.sha256(data).hexdigest()


def chunk_hashes(stream: Readable, chunk_size: int) -> tuple[list[str], int, str]:
    """Read ``stream`` to its end in chunks of ``chunk_size`` bytes (the last one shorter): the SHA-256
    of each chunk, the size and the SHA-256 of the whole. Memory stays at one chunk."""
    _check_chunk_size(chunk_size)
    hashes, size, whole = [], 0, hashlib.sha256()
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    while True:
        filled = 0
        while filled < chunk_size:  # a pipe or socket may return less than asked before its end
            got = stream.readinto(view[filled:])
            if not got:
                break
            filled += got
        if not filled:
            break
        chunk = view[:filled]
        hashes.append(digest(chunk))
        whole.update(chunk)
        size += filled
        if filled < chunk_size:
            break
    return hashes, size, whole.hexdigest()


def _check_chunk_size(chunk_size: int) -> None:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or not (
            MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE):
        raise ValueError(f"chunk size must be {MIN_CHUNK_SIZE}..{MAX_CHUNK_SIZE} bytes, not {chunk_size!r}")


def chunk_count(size: int, chunk_size: int) -> int:
    return -(-size // chunk_size)


def build_manifest(*, transfer_id: str, agreement_id: str, resource_id: str, version: str | int, chunk_size: int,
                   size: int, sha256: str, masked: bool, created: str, masking_rules: Sequence[str] = (),
                   chunk_hashes: Sequence[str] | None = None, objects: Sequence[dict] | None = None,
                   name: str = "data") -> dict:
    """The manifest of a delivery: ``objects`` [{name, size, sha256, chunks}], or one object ``name``
    of ``chunk_hashes``; ``size``/``sha256`` of all objects' bytes in order; ``masking_rules`` names
    the rules applied (when ``masked``)."""
    _check_chunk_size(chunk_size)
    if objects is None:
        objects = [{"name": name, "size": size, "sha256": sha256, "chunks": list(chunk_hashes or [])}]
    listed = [{"name": o["name"], "size": o["size"], "sha256": o["sha256"], "chunks": list(o["chunks"])}
              for o in objects]
    for o in listed:
        if len(o["chunks"]) != chunk_count(o["size"], chunk_size):
            raise ValueError(f"{len(o['chunks'])} chunk hashes for {o['size']} bytes in chunks of {chunk_size}")
        if name_problem(o["name"]):
            raise ValueError(f"object name {o['name']!r}: {name_problem(o['name'])}")
    if sum(o["size"] for o in listed) != size or len({o["name"] for o in listed}) != len(listed):
        raise ValueError("the objects' sizes do not add up, or two objects have one name")
    return {"@type": MANIFEST_TYPE, "v": VERSION, "transferId": transfer_id, "agreementId": agreement_id,
            "resource": resource_id, "version": version, "chunkSize": chunk_size, "objects": listed,
            "size": size, "sha256": sha256, "masked": bool(masked), "maskingRules": list(masking_rules),
            "created": created}


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a delivered object (None when it can): a relative POSIX path of
    plain parts, no ``..``, no backslash or control character."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        return "empty or too long"
    if name.startswith("/") or "\\" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "not a relative path"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "an empty, . or .. part"
    return None


def objects(manifest: dict) -> list[dict]:
    """The objects of a verified manifest, [{name, size, sha256, chunks}] (version 1: its one object,
    named by its resource)."""
    if manifest.get("v") == 1:
        return [{"name": "data", "size": manifest["size"], "sha256": manifest["sha256"],
                 "chunks": manifest["chunks"]}]
    return manifest["objects"]


class Layout:
    """Where each chunk of a verified manifest is: chunks are numbered across the objects in order.
    Built once per manifest (it walks the object list)."""

    def __init__(self, manifest: dict) -> None:
        self.manifest = manifest
        self.transfer = manifest["transferId"]
        self.chunk_size = manifest["chunkSize"]
        self.objects = objects(manifest)
        self.hashes: list[str] = []
        self.first: list[int] = []  # the number of each object's first chunk
        self.start: list[int] = []  # where each object starts in the objects' bytes one after the other
        self._owner: list[int] = []
        at = 0
        for k, o in enumerate(self.objects):
            self.first.append(len(self.hashes))
            self.start.append(at)
            self.hashes.extend(o["chunks"])
            self._owner.extend([k] * len(o["chunks"]))
            at += o["size"]
        self.total = len(self.hashes)

    def object_of(self, index: int) -> int:
        return self._owner[index]

    def chunks_of(self, k: int) -> range:
        return range(self.first[k], self.first[k] + len(self.objects[k]["chunks"]))

    def length(self, index: int) -> int:
        k = self._owner[index]
        return min(self.chunk_size, self.objects[k]["size"] - (index - self.first[k]) * self.chunk_size)

    def offset(self, index: int) -> int:
        """Where chunk ``index`` starts in the objects' bytes one after the other."""
        k = self._owner[index]
        return self.start[k] + (index - self.first[k]) * self.chunk_size


def layout(manifest: "dict | Layout") -> Layout:
    return manifest if isinstance(manifest, Layout) else Layout(manifest)


def chunk_total(manifest: dict) -> int:
    """How many chunks a verified manifest lists, over all its objects."""
    return sum(len(o["chunks"]) for o in objects(manifest))


def manifest_hash(manifest: dict) -> str:
    """The SHA-256 of the manifest's JCS form: what a receipt and the operator's delivery record name."""
    return digest(canonical(manifest))


def sign(key: SigningKey, document: dict) -> dict:
    """A detached signature by ``key`` over ``document`` (a manifest or a receipt)."""
    return {"type": SIGNATURE_TYPE, "verificationMethod": key.did,
            "signature": base64.b64encode(key.sign(canonical(document))).decode()}


def _verify_signature(document: dict, signature: object, signer: str, error: type[DeliveryError],
                      transfer: str) -> None:
    if not isinstance(signature, dict) or not isinstance(signature.get("verificationMethod"), str):
        raise error(transfer, LocalText("delivery.reason.signature_missing", signer))
    if signature["verificationMethod"] != signer or signature.get("type") != SIGNATURE_TYPE:
        raise error(transfer, LocalText("delivery.reason.signer", shown(signature["verificationMethod"]), signer))
    value = signature.get("signature")
    try:
        if not isinstance(value, str) or len(value) > 128:  # base64 of 64 bytes is 88 characters
            raise ValueError("not a signature")
        raw = base64.b64decode(value, validate=True)
        verify_sig(_public_key(signer), canonical(document), raw, "delivery")
    except (ApplianceError, ValueError):
        raise error(transfer, LocalText("delivery.reason.signature_invalid")) from None


def _shape(document: object, fields: dict[str, type | tuple[type, ...]], doc_type: str,
           error: type[DeliveryError], malformed: str, versions: tuple[int, ...]) -> str:
    """The transfer id of a document that has every field of the right JSON type (else ``error``)."""
    transfer = document.get("transferId") if isinstance(document, dict) else None
    named = transfer[:80].encode("utf-8", "backslashreplace").decode() if isinstance(transfer, str) else "?"
    if not isinstance(document, dict):
        raise error(named, LocalText(malformed, shown(document)))
    for name, kind in fields.items():
        value = document.get(name)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise error(named, LocalText(malformed, name))
    if document["@type"] != doc_type:
        raise error(named, LocalText(malformed, "@type"))
    if document["v"] not in versions:
        raise error(named, LocalText("delivery.reason.version", shown(document["v"]),
                                     ", ".join(str(v) for v in versions)))
    return named


def verify_manifest(manifest: object, signature: object, provider_did: str) -> None:
    """Check ``manifest`` is well formed and signed by ``provider_did``; ManifestInvalid if not."""
    transfer = _shape(manifest, _MANIFEST_FIELDS, MANIFEST_TYPE, ManifestInvalid, "delivery.reason.manifest_malformed",
                      READS)
    assert isinstance(manifest, dict)
    chunk_size, size = manifest["chunkSize"], manifest["size"]
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ManifestInvalid(transfer, LocalText("delivery.reason.chunk_size", shown(chunk_size), MIN_CHUNK_SIZE,
                                                  MAX_CHUNK_SIZE))
    if not _HEX.fullmatch(manifest["sha256"]):
        raise ManifestInvalid(transfer, LocalText("delivery.reason.manifest_malformed", "sha256"))
    if manifest["v"] == 1 and not isinstance(manifest.get("chunks"), list):
        raise ManifestInvalid(transfer, LocalText("delivery.reason.manifest_malformed", "chunks"))
    if manifest["v"] != 1 and (not isinstance(manifest.get("objects"), list) or not manifest["objects"]):
        raise ManifestInvalid(transfer, LocalText("delivery.reason.manifest_malformed", "objects"))
    listed = objects(manifest)
    for o in listed:
        _check_object(o, chunk_size, transfer)
    if manifest["v"] != 1 and (sum(o["size"] for o in listed) != size
                               or len({o["name"] for o in listed}) != len(listed)):
        raise ManifestInvalid(transfer, LocalText("delivery.reason.manifest_malformed", "objects"))
    if not all(isinstance(r, str) for r in manifest["maskingRules"]):
        raise ManifestInvalid(transfer, LocalText("delivery.reason.manifest_malformed", "maskingRules"))
    _verify_signature(manifest, signature, provider_did, ManifestInvalid, transfer)


def _check_object(o: object, chunk_size: int, transfer: str) -> None:
    if not isinstance(o, dict):
        raise ManifestInvalid(transfer, LocalText("delivery.reason.manifest_malformed", "objects"))
    for name, kind in _OBJECT_FIELDS.items():
        value = o.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ManifestInvalid(transfer, LocalText("delivery.reason.manifest_malformed", name))
    if name_problem(o["name"]):
        raise ManifestInvalid(transfer, LocalText("delivery.reason.manifest_malformed", "name"))
    size, chunks = o["size"], o["chunks"]
    if size < 0 or len(chunks) != chunk_count(size, chunk_size):
        raise ManifestInvalid(transfer, LocalText("delivery.reason.chunk_count", len(chunks), shown(size), chunk_size))
    if not _HEX.fullmatch(o["sha256"]):
        raise ManifestInvalid(transfer, LocalText("delivery.reason.manifest_malformed", "sha256"))
    if not all(isinstance(h, str) and _HEX.fullmatch(h) for h in chunks):
        raise ManifestInvalid(transfer, LocalText("delivery.reason.manifest_malformed", "chunks"))


def chunk_length(manifest: "dict | Layout", index: int) -> int:
    """How many bytes chunk ``index`` of a verified manifest has (an object's last one may be shorter)."""
    return layout(manifest).length(index)


def check_chunk(manifest: "dict | Layout", index: int, data: bytes | memoryview) -> None:
    """Check chunk ``index`` (from 0, across the objects) of a verified manifest (or its ``Layout``);
    ChunkCorrupt when it is not the one listed."""
    where = layout(manifest)
    transfer = where.transfer
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < where.total:
        raise ChunkCorrupt(shown(index), transfer, LocalText("delivery.reason.chunk_index", where.total))
    expected = where.length(index)
    if len(data) != expected:
        raise ChunkCorrupt(index, transfer, LocalText("delivery.reason.chunk_length", len(data), expected))
    found = digest(data)
    if found != where.hashes[index]:
        raise ChunkCorrupt(index, transfer, LocalText("delivery.reason.chunk_hash", found, where.hashes[index]))


def build_receipt(manifest: dict, signature: dict, *, consumer_did: str, received: str, sha256: str) -> dict:
    """The consumer's receipt for the delivery of a verified ``manifest`` signed with ``signature``,
    received at ``received`` with the SHA-256 ``sha256`` it computed over what it stored.
    DeliveryError if that is not the manifest's: a receipt confirms a complete, intact delivery."""
    if sha256 != manifest["sha256"]:
        raise DeliveryError(LocalText("delivery.reason.received_differs", sha256, manifest["sha256"]))
    return {"@type": RECEIPT_TYPE, "v": RECEIPT_VERSION, "transferId": manifest["transferId"],
            "agreementId": manifest["agreementId"], "manifest": manifest_hash(manifest),
            "providerSignature": signature["signature"], "consumer": consumer_did, "received": received,
            "size": manifest["size"], "sha256": sha256}


def verify_receipt(receipt: object, signature: object, consumer_did: str, manifest: dict) -> None:
    """Check ``receipt`` confirms ``manifest`` (the one this provider sent) and is signed by
    ``consumer_did``; ReceiptInvalid if not."""
    transfer = _shape(receipt, _RECEIPT_FIELDS, RECEIPT_TYPE, ReceiptInvalid, "delivery.reason.receipt_malformed",
                      (RECEIPT_VERSION,))
    assert isinstance(receipt, dict)
    if (receipt["manifest"] != manifest_hash(manifest) or receipt["transferId"] != manifest["transferId"]
            or receipt["agreementId"] != manifest["agreementId"] or receipt["size"] != manifest["size"]):
        raise ReceiptInvalid(transfer, LocalText("delivery.reason.other_manifest"))
    if receipt["sha256"] != manifest["sha256"]:
        raise ReceiptInvalid(transfer, LocalText("delivery.reason.receipt_sha256", shown(receipt["sha256"]),
                                                 manifest["sha256"]))
    if receipt["consumer"] != consumer_did:
        raise ReceiptInvalid(transfer, LocalText("delivery.reason.other_consumer", shown(receipt["consumer"]),
                                                 consumer_did))
    _verify_signature(receipt, signature, consumer_did, ReceiptInvalid, transfer)
