"""Membership credentials: W3C Data Integrity ``eddsa-jcs-2022``, checked against the W3C vector.

The vector files are copied into ``tests/vectors/w3c-vc-di-eddsa`` (see the README there).
"""

import hashlib
import json
from pathlib import Path

import pytest

from appliance.crypto.jcs import canonical
from appliance.crypto.keys import SigningKey, multibase_decode
from appliance.crypto.vc import hash_data, proof_config, sign_credential, verify_credential
from appliance.errors import CredentialInvalid

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "w3c-vc-di-eddsa"
STEPS = VECTORS / "eddsa-jcs-2022"
PUBLIC_MULTIBASE = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
VM = f"did:key:{PUBLIC_MULTIBASE}#{PUBLIC_MULTIBASE}"
CREATED = "2023-02-24T23:36:38Z"


def text(name: str) -> str:
    return (STEPS / name).read_text(encoding="utf-8")


def vector_key() -> SigningKey:
    pair = json.loads((VECTORS / "keyPair.json").read_text())
    private = multibase_decode(pair["privateKeyMultibase"])
    assert private[:2] == b"\x80\x26"  # multicodec ed25519-priv, then the 32-byte seed
    return SigningKey.from_seed(private[2:])


def signed_vector() -> dict:
    return json.loads(text("signedJCS.json"))


def unsigned_vector() -> dict:
    """The Alumni Credential before signing: the signed vector without its proof."""
    document = signed_vector()
    del document["proof"]
    return document


def sign_vector(document=None) -> dict:
    return sign_credential(
        document or unsigned_vector(), vector_key(), verification_method=VM, created=CREATED
    )


# --- every step of the W3C example ------------------------------------------------------------


def test_canonical_document_matches_vector():
    assert canonical(unsigned_vector()) == text("canonDocJCS.txt").encode()


def test_proof_config_matches_vector_in_content_and_key_order():
    config = proof_config(unsigned_vector(), verification_method=VM, created=CREATED)
    expected = json.loads(text("proofConfigJCS.json"))
    assert config == expected
    assert list(config) == list(expected)
    assert canonical(config) == text("proofCanonJCS.txt").encode()


def test_hashes_match_vector():
    config = proof_config(unsigned_vector(), verification_method=VM, created=CREATED)
    assert hashlib.sha256(canonical(config)).hexdigest() == text("proofHashJCS.txt")
    assert hashlib.sha256(canonical(unsigned_vector())).hexdigest() == text("docHashJCS.txt")
    assert hash_data(unsigned_vector(), config).hex() == text("combinedHashJCS.txt")


def test_signature_matches_vector():
    proof_value = sign_vector()["proof"]["proofValue"]
    assert proof_value == text("sigBTC58JCS.txt")
    assert multibase_decode(proof_value).hex() == text("sigHexJCS.txt")


def test_signed_credential_reproduces_vector_byte_for_byte():
    signed = sign_vector()
    assert json.dumps(signed, indent=2).encode() == (STEPS / "signedJCS.json").read_bytes()


def test_signing_does_not_change_the_input():
    document = unsigned_vector()
    sign_vector(document)
    assert document == unsigned_vector()


# --- verification ------------------------------------------------------------------------------


def test_w3c_signed_vector_verifies():
    verify_credential(signed_vector())  # no exception


def test_round_trip_with_another_document_and_key():
    key = SigningKey.from_seed(b"operator-seed-for-tests-32-bytes")
    fragment = key.did.removeprefix("did:key:")
    document = json.loads((VECTORS / "employmentAuth.json").read_text())
    signed = sign_credential(
        document, key, verification_method=f"{key.did}#{fragment}", created="2026-11-22T10:00:00Z"
    )
    verify_credential(signed)
    assert signed["proof"]["@context"] == document["@context"]


def test_custom_resolver_is_asked_for_the_key():
    asked = []

    def resolve(verification_method):
        asked.append(verification_method)
        return vector_key().public_key

    verify_credential(signed_vector(), resolve_key=resolve)
    assert asked == [VM]


def tampered(edit):
    document = signed_vector()
    edit(document)
    return document


TAMPERING = {
    "subject": lambda d: d["credentialSubject"].__setitem__("alumniOf", "Another School"),
    "added claim": lambda d: d.__setitem__("validUntil", "2099-01-01T00:00:00Z"),
    "removed claim": lambda d: d.pop("description"),
    "created": lambda d: d["proof"].__setitem__("created", "2024-02-24T23:36:38Z"),
    "verification method": lambda d: d["proof"].__setitem__(
        "verificationMethod",
        SigningKey.from_seed(bytes(32)).did
        + "#"
        + SigningKey.from_seed(bytes(32)).did.removeprefix("did:key:"),
    ),
    "proof value": lambda d: d["proof"].__setitem__(
        "proofValue", "z" + "1" * 10 + d["proof"]["proofValue"][11:]
    ),
}


@pytest.mark.parametrize("name", sorted(TAMPERING))
def test_tampered_credential_is_refused(name):
    with pytest.raises(CredentialInvalid):
        verify_credential(tampered(TAMPERING[name]))


def test_bad_signature_reason_is_given():
    document = tampered(TAMPERING["subject"])
    with pytest.raises(CredentialInvalid, match="signature does not match"):
        verify_credential(document)


@pytest.mark.parametrize("edit, reason", [
    (lambda d: d.pop("proof"), "no proof"),
    (lambda d: d.__setitem__("proof", [d["proof"]]), "single proof"),
    (lambda d: d["proof"].__setitem__("type", "Ed25519Signature2020"), "proof type"),
    (lambda d: d["proof"].pop("type"), "proof type"),
    (lambda d: d["proof"].__setitem__("cryptosuite", "eddsa-rdfc-2022"), "cryptosuite"),
    (lambda d: d["proof"].pop("cryptosuite"), "cryptosuite"),
    (lambda d: d["proof"].__setitem__("proofPurpose", "authentication"), "purpose"),
    (lambda d: d["proof"].pop("proofValue"), "proofValue"),
    (lambda d: d["proof"].__setitem__("proofValue", "u" + "A" * 86), "base58btc"),
    (lambda d: d["proof"].__setitem__("proofValue", "z1111"), "64-byte"),
    (lambda d: d["proof"].__setitem__("verificationMethod", "https://vc.example/key"), "did:key"),
    (lambda d: d["proof"].__setitem__("created", "yesterday"), "date-time"),
    (lambda d: d.__setitem__("@context", ["https://www.w3.org/ns/credentials/v2"]), "@context"),
    (lambda d: d.__setitem__("@context", list(reversed(d["@context"]))), "@context"),
    (lambda d: d.pop("@context"), "@context"),
    (lambda d: d.__setitem__("big", 2**60), "canonicalised"),
])
def test_unusable_proof_is_refused_with_a_reason(edit, reason):
    with pytest.raises(CredentialInvalid, match=reason):
        verify_credential(tampered(edit))


def test_non_object_is_refused():
    with pytest.raises(CredentialInvalid):
        verify_credential(["not", "a", "credential"])


def test_cannot_sign_twice_or_with_a_key_the_method_does_not_name():
    with pytest.raises(ValueError, match="already has a proof"):
        sign_credential(signed_vector(), vector_key(), verification_method=VM, created=CREATED)
    other = SigningKey.from_seed(bytes(32))
    with pytest.raises(ValueError, match="does not name"):
        sign_credential(unsigned_vector(), other, verification_method=VM, created=CREATED)


def test_created_must_be_a_date_time_stamp():
    with pytest.raises(ValueError, match="dateTimeStamp"):
        sign_credential(
            unsigned_vector(), vector_key(), verification_method=VM, created="2023-02-24"
        )


def test_context_is_copied_not_shared():
    document = unsigned_vector()
    signed = sign_vector(document)
    signed["proof"]["@context"].append("https://example.org/extra")
    assert signed["@context"] == document["@context"] == unsigned_vector()["@context"]


def test_context_appended_after_signing_is_accepted_as_the_spec_says():
    """Verify Proof step 4: the document's @context must only *start with* the proof's."""
    document = signed_vector()
    document["@context"].append("https://example.org/extra")
    verify_credential(document)
