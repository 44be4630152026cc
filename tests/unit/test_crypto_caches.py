"""The caches that keep per-message crypto cheap never change an outcome: a credential verified once
still fails when altered or checked against another key, and sealing keeps working for new keys."""

from __future__ import annotations

import copy

import pytest

from appliance.crypto.keys import SigningKey
from appliance.crypto.sealed import seal, unseal
from appliance.crypto.vc import sign_credential, verify_credential
from appliance.errors import CredentialInvalid, MalformedDid, MalformedMessage

OPERATOR = SigningKey.from_seed(b"O" * 32)
CREDENTIAL = {"@context": ["https://www.w3.org/ns/credentials/v2"], "type": ["VerifiableCredential"],
              "issuer": OPERATOR.did, "credentialSubject": {"id": "did:key:z6Mkx", "grade": 3}}


def signed() -> dict:
    fragment = OPERATOR.did.removeprefix("did:key:")
    return sign_credential(CREDENTIAL, OPERATOR, verification_method=f"{OPERATOR.did}#{fragment}",
                           created="2026-11-22T10:00:00Z")


def test_a_verified_credential_altered_afterwards_is_still_refused():
    good = signed()
    verify_credential(good)
    verify_credential(copy.deepcopy(good))  # the repeat (answered from the cache) passes too
    altered = copy.deepcopy(good)
    altered["credentialSubject"]["grade"] = 5
    with pytest.raises(CredentialInvalid, match="signature does not match"):
        verify_credential(altered)
    with pytest.raises(CredentialInvalid, match="signature does not match"):
        verify_credential(altered)  # failures are not remembered as successes either


def test_a_verified_credential_checked_against_another_key_or_purpose_is_refused():
    good = signed()
    verify_credential(good)
    other = SigningKey.from_seed(b"S" * 32)
    with pytest.raises(CredentialInvalid):
        verify_credential(good, resolve_key=lambda method: other.public_key)
    with pytest.raises(CredentialInvalid, match="purpose"):
        verify_credential(good, proof_purpose="authentication")


def test_sealing_to_many_keys_and_opening_with_each():
    keys = [SigningKey.generate() for _ in range(5)]
    for key in keys * 2:
        assert unseal(seal(b"hello " + key.did.encode(), key.did), key) == b"hello " + key.did.encode()
    with pytest.raises(MalformedMessage, match="another node"):
        unseal(seal(b"x", keys[0].did), keys[1])


def test_a_bad_did_fails_every_time():
    for _ in range(2):
        with pytest.raises(MalformedDid):
            seal(b"x", "did:key:zNotAKey")
