"""The ODRL Agreement both nodes sign: the negotiated offer's rules plus target, assigner (provider),
assignee (consumer) and a timestamp.

Signatures are detached Ed25519 over the RFC 8785 (JCS) form of the agreement, by the signer's node
key: the provider's travels in the ContractAgreementMessage, the consumer's countersignature in its
ContractAgreementVerificationMessage. ``verify`` raises AgreementInvalid for a forged signature or an
agreement whose rules differ from the offer that was on the table.
"""

from __future__ import annotations

import base64
from typing import Any
from functools import lru_cache

from appliance.crypto.jcs import canonical
from appliance.crypto.keys import SigningKey, public_key_from_did, verify as verify_sig
from appliance.errors import ApplianceError, ContractError, LocalText

RULE_KEYS = ("permission", "prohibition", "obligation", "profile")
_public_key = lru_cache(maxsize=256)(public_key_from_did)  # a pure function of the DID; errors are not cached


def build(offer: dict, *, agreement_id: str, target: str, assigner: str, assignee: str, timestamp: str) -> dict:
    doc = {"@id": agreement_id, "@type": "Agreement", "target": target, "assigner": assigner,
           "assignee": assignee, "timestamp": timestamp}
    for key in RULE_KEYS:
        if key in offer:
            doc[key] = offer[key]
    return doc


def sign(key: SigningKey, agreement: dict) -> dict:
    return {"type": "Ed25519Signature2020-jcs", "verificationMethod": key.did,
            "signature": base64.b64encode(key.sign(canonical(agreement))).decode()}


def same_terms(agreement: dict, offer: dict) -> bool:
    """Whether the rules of ``agreement`` and ``offer`` have the same RFC 8785 (JCS) form."""
    for key in RULE_KEYS:
        a, b = agreement.get(key), offer.get(key)
        if not _identical(a, b) and canonical(a) != canonical(b):
            return False
    return True


def _identical(a: Any, b: Any) -> bool:
    """Equal JSON made of the same types, with no numbers (so no JCS number rules apply): such
    values always have the same canonical form. Anything else is left to ``canonical``."""
    if type(a) is not type(b):
        return False
    if a is None or type(a) is str or type(a) is bool:
        return a == b
    if type(a) is dict:
        return a.keys() == b.keys() and all(type(k) is str and _identical(v, b[k]) for k, v in a.items())
    if type(a) is list:
        return len(a) == len(b) and all(map(_identical, a, b))
    return False


def verify(agreement: dict, signature: object, *, signer_keys: tuple[str, ...], offer: dict | None = None,
           parties: tuple[str, str] | None = None) -> None:
    """Check ``signature`` is by one of ``signer_keys`` (did:key of the signer's keys) over ``agreement``,
    that its rules are ``offer``'s and that ``parties`` are (assigner, assignee)."""
    if offer is not None and not same_terms(agreement, offer):
        raise ContractError(LocalText("contract.reason.terms_differ"))
    if parties is not None and (agreement.get("assigner"), agreement.get("assignee")) != parties:
        raise ContractError(LocalText("contract.reason.other_parties"))
    if not isinstance(signature, dict) or signature.get("verificationMethod") not in signer_keys:
        raise ContractError(LocalText("contract.reason.signature_missing"))
    try:
        raw = base64.b64decode(str(signature.get("signature", "")), validate=True)
        verify_sig(_public_key(signature["verificationMethod"]), canonical(agreement), raw, "agreement")
    except (ApplianceError, ValueError):
        raise ContractError(LocalText("contract.reason.signature_invalid")) from None
