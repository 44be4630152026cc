"""W3C Verifiable Credentials secured with the Data Integrity ``eddsa-jcs-2022`` cryptosuite.

Follows "Data Integrity EdDSA Cryptosuites v1.0" (W3C Recommendation), section 3.3:

* proof configuration = ``{type, cryptosuite, created, verificationMethod, proofPurpose,
  @context}`` with ``@context`` copied from the document;
* hash data = SHA-256(JCS(proof configuration)) ‖ SHA-256(JCS(document without proof));
* ``proofValue`` = base58btc multibase of the Ed25519 signature of the hash data.

The key order of the proof we add matches the W3C test vector, so ``json.dumps(signed,
indent=2)`` reproduces ``signedJCS.json`` byte for byte.

``verify_credential`` remembers the credentials it found valid with the default (did:key) resolver,
in a bounded cache keyed by the SHA-256 of the credential's canonical form and the proof purpose: a
node sees the same membership credential in every request of a peer, and with the key taken from
the document the canonical form decides the outcome completely, so a repeat is answered without
decoding and checking the signature again. Failures, and checks with a custom resolver, are never
cached.
"""

from __future__ import annotations

import copy
import re
import threading
from collections import OrderedDict
from collections.abc import Callable

from appliance.crypto.jcs import canonical, sha256
from appliance.crypto.keys import (
    SIGNATURE_SIZE,
    SigningKey,
    multibase_decode,
    multibase_encode,
    public_key_from_did,
    verify,
)
from appliance.errors import BadSignature, CredentialInvalid, LocalText, MalformedDid, shown

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-jcs-2022"
# XML Schema 1.1 dateTimeStamp: a date-time with a mandatory time zone.
_DATE_TIME_STAMP = re.compile(
    r"-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", re.ASCII
)

KeyResolver = Callable[[str], bytes]
"""``resolve_key(verification_method) -> Ed25519 public key bytes``."""

_VERIFIED_MAX = 512
_verified: OrderedDict[tuple[bytes, str], None] = OrderedDict()  # credentials found valid (default resolver)
_verified_lock = threading.Lock()


def proof_config(
    document: dict,
    *,
    verification_method: str,
    created: str,
    proof_purpose: str = "assertionMethod",
) -> dict:
    """The proof configuration (the proof without ``proofValue``) for ``document``."""
    if not _DATE_TIME_STAMP.fullmatch(created):
        raise ValueError(f"created {created!r} is not an XML Schema dateTimeStamp")
    config = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": created,
        "verificationMethod": verification_method,
        "proofPurpose": proof_purpose,
    }
    if "@context" in document:
        config["@context"] = copy.deepcopy(document["@context"])
    return config


def hash_data(unsecured_document: dict, config: dict) -> bytes:
    """SHA-256(JCS(proof configuration)) ‖ SHA-256(JCS(unsecured document)): what is signed."""
    return sha256(canonical(config)) + sha256(canonical(unsecured_document))


def sign_credential(
    document: dict,
    key: SigningKey,
    *,
    verification_method: str,
    created: str,
    proof_purpose: str = "assertionMethod",
) -> dict:
    """Return a copy of ``document`` with an ``eddsa-jcs-2022`` proof added.

    ``verification_method`` is the DID URL of ``key`` (for a did:key,
    ``did:key:z6Mk…#z6Mk…``). Raises ``ValueError`` if the document already has a proof, or a
    did:key verification method does not name ``key``.
    """
    if "proof" in document:
        raise ValueError("the document already has a proof; proof sets are not supported")
    if verification_method.startswith("did:key:"):
        if public_key_from_did(verification_method) != key.public_key:
            raise ValueError("verification_method does not name the signing key")
    config = proof_config(
        document,
        verification_method=verification_method,
        created=created,
        proof_purpose=proof_purpose,
    )
    signature = key.sign(hash_data(document, config))
    signed = copy.deepcopy(document)
    signed["proof"] = {**config, "proofValue": multibase_encode(signature)}
    return signed


def verify_credential(
    document: dict,
    resolve_key: KeyResolver | None = None,
    *,
    proof_purpose: str = "assertionMethod",
) -> None:
    """Check the ``eddsa-jcs-2022`` proof of a credential; raise ``CredentialInvalid(reason)``.

    ``resolve_key(verification_method)`` returns the issuer's public key; the default accepts
    a did:key (or its DID URL) and takes the key from it. The proof must be made for
    ``proof_purpose``.
    """
    if not isinstance(document, dict):
        raise CredentialInvalid(LocalText("crypto.reason.credential_not_object"))
    proof = _single_proof(document)
    _check_proof_fields(proof, proof_purpose)
    unsecured = {name: value for name, value in document.items() if name != "proof"}
    config = {name: value for name, value in proof.items() if name != "proofValue"}
    if "@context" in config:
        _check_context(document.get("@context"), config["@context"])
        unsecured["@context"] = config["@context"]
    # With the default resolver the key comes from the document itself, so the document alone
    # decides the outcome: a document found valid before is valid again (see the module docstring).
    seen = _cache_key(document, proof_purpose) if resolve_key is None else None
    if seen is not None:
        with _verified_lock:
            if seen in _verified:
                _verified.move_to_end(seen)
                return
    signature = _decode_proof_value(proof["proofValue"])
    public_key = _resolve(resolve_key, proof["verificationMethod"])
    try:
        data = hash_data(unsecured, config)
    except ValueError as exc:
        raise CredentialInvalid(LocalText("crypto.reason.credential_not_canonical", str(exc))) from None
    try:
        verify(public_key, data, signature, what="credential")
    except BadSignature:
        raise CredentialInvalid(LocalText("crypto.reason.credential_signature", proof["verificationMethod"])) from None
    if seen is not None:
        with _verified_lock:
            _verified[seen] = None
            if len(_verified) > _VERIFIED_MAX:
                _verified.popitem(last=False)


def _cache_key(document: dict, proof_purpose: str) -> tuple[bytes, str] | None:
    try:
        return sha256(canonical(document)), proof_purpose
    except ValueError:  # the full check below says why
        return None


def _single_proof(document: dict) -> dict:
    proof = document.get("proof")
    if proof is None:
        raise CredentialInvalid(LocalText("crypto.reason.credential_no_proof"))
    if not isinstance(proof, dict):
        raise CredentialInvalid(LocalText("crypto.reason.credential_proof_not_single"))
    return proof


def _check_proof_fields(proof: dict, proof_purpose: str) -> None:
    if proof.get("type") != PROOF_TYPE:
        raise CredentialInvalid(LocalText("crypto.reason.proof_type", shown(proof.get("type")), PROOF_TYPE))
    if proof.get("cryptosuite") != CRYPTOSUITE:
        raise CredentialInvalid(LocalText("crypto.reason.proof_cryptosuite", shown(proof.get("cryptosuite")),
                                          CRYPTOSUITE))
    if proof.get("proofPurpose") != proof_purpose:
        raise CredentialInvalid(LocalText("crypto.reason.proof_purpose", shown(proof.get("proofPurpose")),
                                          repr(proof_purpose)))
    for name in ("verificationMethod", "proofValue"):
        if not isinstance(proof.get(name), str):
            raise CredentialInvalid(LocalText("crypto.reason.proof_field_missing", name))
    created = proof.get("created")
    if created is not None and not (
        isinstance(created, str) and _DATE_TIME_STAMP.fullmatch(created)
    ):
        raise CredentialInvalid(LocalText("crypto.reason.proof_created", shown(created)))


def _check_context(document_context: object, proof_context: object) -> None:
    """The document's @context must start with the proof's @context, in the same order."""
    doc = document_context if isinstance(document_context, list) else [document_context]
    prf = proof_context if isinstance(proof_context, list) else [proof_context]
    if document_context is None or doc[: len(prf)] != prf:
        raise CredentialInvalid(LocalText("crypto.reason.proof_context"))


def _decode_proof_value(value: str) -> bytes:
    try:
        signature = multibase_decode(value)
    except ValueError as exc:
        raise CredentialInvalid(LocalText("crypto.reason.proof_value_unusable", str(exc))) from None
    if len(signature) != SIGNATURE_SIZE:
        raise CredentialInvalid(LocalText("crypto.reason.proof_value_size", SIGNATURE_SIZE))
    return signature


def _resolve(resolve_key: KeyResolver | None, verification_method: str) -> bytes:
    if resolve_key is not None:
        return resolve_key(verification_method)
    try:
        return public_key_from_did(verification_method)
    except MalformedDid:
        raise CredentialInvalid(LocalText("crypto.reason.verification_method", shown(verification_method))) from None
