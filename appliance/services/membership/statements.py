"""The operator's signed statements of a space, made and checked: the membership credential, the
revocation list, a listing approval and a filing receipt.

What each holds and what a reader checks in it is :mod:`appliance.domain.membership`; the
signatures are :mod:`appliance.crypto.statement` (and :mod:`appliance.crypto.vc` for the
credential's ``eddsa-jcs-2022`` proof). The invitation, the fifth statement, is in
:mod:`appliance.services.membership.invitation`.
"""

from __future__ import annotations

from datetime import datetime

from appliance.crypto.keys import SigningKey
from appliance.crypto.statement import entry_sha256, sign_statement, verify_statement
from appliance.crypto.vc import sign_credential, verify_credential
from appliance.domain import membership as m


def issue_credential(key: SigningKey, *, operator_did: str, space_id: str, space_name: str, node_did: str,
                     name: str, org: str, member_since: str, valid_until: str, credential_id: str,
                     grade: int = m.GRADE_MIN, issued: str | None = None) -> dict:
    """A MembershipCredential for ``node_did`` in ``space_id`` with its member ``grade``, signed
    eddsa-jcs-2022 by the operator (``issued``: when, if re-issued after ``member_since``)."""
    document = m.credential_document(operator_did=operator_did, space_id=space_id, space_name=space_name,
                                     node_did=node_did, name=name, org=org, member_since=member_since,
                                     valid_until=valid_until, credential_id=credential_id, grade=grade, issued=issued)
    return sign_credential(document, key, verification_method=m.verification_method(key.did),
                           created=document["validFrom"])


def check_credential(credential: object, *, operator_did: str, space_id: str, node_did: str | None = None,
                     now: datetime | None = None) -> dict:
    """Verify a MembershipCredential: proof by ``operator_did``, for ``space_id`` (and ``node_did``), in date.

    Returns the credential subject. Raises CredentialInvalid saying why not.
    """
    credential = m.check_credential_issuer(credential, operator_did=operator_did)
    verify_credential(credential)
    return m.check_credential_subject(credential, space_id=space_id, node_did=node_did, now=now)


def revocation_list(key: SigningKey, *, space_id: str, operator_did: str, seq: int, ts: str,
                    revoked: list[dict]) -> dict:
    """The signed list of revoked members: ``revoked`` = ``[{"did", "reason", "at"}, …]`` sorted by did."""
    return sign_statement(key, m.revocation_list_body(space_id=space_id, operator_did=operator_did, seq=seq, ts=ts,
                                                      revoked=revoked))


def check_revocation_list(statement: object, *, space_id: str, operator_did: str) -> dict:
    """Verify a revocation list from the operator of ``space_id``; return it."""
    stmt = verify_statement(statement, kind=m.REVOCATION_LIST, signer=operator_did, fields=m.REVOCATION_FIELDS)
    return m.check_revocation_list_body(stmt, space_id=space_id, operator_did=operator_did)


def listing_approval(key: SigningKey, *, space_id: str, operator_did: str, provider: str, dataset_id: str,
                     entry: dict, approved_at: str) -> dict:
    """The operator's signed approval of ``provider``'s catalog ``entry`` for ``dataset_id``."""
    return sign_statement(key, m.listing_approval_body(space_id=space_id, operator_did=operator_did,
                                                       provider=provider, dataset_id=dataset_id,
                                                       entry_digest=entry_sha256(entry), approved_at=approved_at))


def check_listing_approval(approval: object, *, space_id: str, operator_did: str, provider: str,
                           dataset_id: str, entry: object) -> dict:
    """Verify that ``approval`` is the operator's approval of exactly this entry by this provider."""
    stmt = verify_statement(approval, kind=m.LISTING_APPROVAL, signer=operator_did, fields=m.APPROVAL_FIELDS)
    return m.check_listing_approval_body(stmt, space_id=space_id, operator_did=operator_did, provider=provider,
                                         dataset_id=dataset_id, entry_digest=entry_sha256(entry))


def filing_receipt(key: SigningKey, *, space_id: str, operator_did: str, agreement: dict, filed_by: str,
                   filed_at: str) -> dict:
    """The operator's signed receipt for an agreement filed with it (备案)."""
    return sign_statement(key, m.filing_receipt_body(space_id=space_id, operator_did=operator_did,
                                                     agreement_digest=entry_sha256(agreement), filed_by=filed_by,
                                                     filed_at=filed_at))


def check_filing_receipt(receipt: object, *, space_id: str, operator_did: str, agreement: dict | None = None,
                         agreement_sha256: str | None = None) -> dict:
    """Verify the operator's receipt for ``agreement`` (or for the agreement with that SHA-256)."""
    digest = agreement_sha256 if agreement is None else entry_sha256(agreement)
    stmt = verify_statement(receipt, kind=m.FILING_RECEIPT, signer=operator_did, fields=m.RECEIPT_FIELDS)
    return m.check_filing_receipt_body(stmt, space_id=space_id, agreement_digest=digest)
