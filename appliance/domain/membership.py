"""Space membership and governance: message types, evidence actions and the operator's signed statements.

Everything here is pure: it builds and checks JSON documents with the crypto layer and touches no
store or network. The operator signs four kinds of statement, each a JSON object whose ``sig`` is
the Ed25519 signature (base64url) over the RFC 8785 bytes of every other field, version included:

* the revocation list (``dsnode.revocation-list``), published retained to ``operator/revocations``;
* a listing approval (``dsnode.listing-approval``) that a provider attaches to its catalog entry;
* a filing receipt (``dsnode.filing-receipt``) for an agreement filed with the operator (备案);
* the invitation (``dsnode.invitation``, in :mod:`appliance.services.membership.invitation`).

Membership itself is a W3C Verifiable Credential (``MembershipCredential``) secured with
``eddsa-jcs-2022``, issued by the operator's did:key.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
import re
from datetime import datetime
from enum import StrEnum

from appliance.clock import parse_rfc3339
from appliance.crypto.jcs import canonical, sha256
from appliance.crypto.keys import SigningKey, public_key_from_did, verify
from appliance.crypto.vc import sign_credential, verify_credential
from appliance.errors import BadSignature, CredentialInvalid, MalformedDid, MalformedMessage, shown

STATEMENT_VERSION = 1
SPACE_ID_RE = re.compile(r"[a-z0-9-]{3,64}", re.ASCII)
VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
CREDENTIAL_TYPE = "MembershipCredential"

# Member grades (会员等级): an integer the operator assigns at admission and may change later by
# re-issuing the credential. 1 is the lowest (the default, and what a credential without a grade
# counts as), 5 the highest. The guideline grades data and scenes (分类分级), not participants, so
# the meaning of each level is the operator's policy; dsnode only compares the numbers.
GRADE_MIN = 1
GRADE_MAX = 5
GRADES = range(GRADE_MIN, GRADE_MAX + 1)


class MessageType(StrEnum):
    """The governance messages of the space protocol (see docs/protocol.md, "Membership and governance")."""

    JOIN_REQUEST = "dsnode.membership.join_request"
    JOIN_PENDING = "dsnode.membership.pending"
    ADMITTED = "dsnode.membership.admitted"
    REJECTED = "dsnode.membership.rejected"
    LEAVE = "dsnode.membership.leave"
    REVOCATIONS = "dsnode.membership.revocations"
    SPACE_INFO = "dsnode.membership.space"
    LISTING_REQUEST = "dsnode.listing.request"
    LISTING_APPROVED = "dsnode.listing.approved"
    LISTING_REJECTED = "dsnode.listing.rejected"
    LISTING_WITHDRAWN = "dsnode.listing.withdrawn"
    CHECKPOINT = "dsnode.evidence.checkpoint"
    CONSISTENCY_REQUEST = "dsnode.evidence.consistency_request"
    CONSISTENCY_PROOF = "dsnode.evidence.consistency_proof"
    WITNESSED = "dsnode.evidence.witnessed"
    CONTRACT_FILE = "dsnode.contract.file"
    CONTRACT_FILED = "dsnode.contract.filed"
    CONTRACT_RETIRED = "dsnode.contract.retired"  # a provider tells the operator a filed agreement was retired
    CREDENTIAL = "dsnode.membership.credential"  # a re-issued credential (e.g. a new grade)
    DEMAND_SUBMIT = "dsnode.demand.submit"  # member -> operator: publish this demand in the space
    DEMAND_CLOSE = "dsnode.demand.close"  # member -> operator: withdraw it
    DEMAND = "dsnode.demand.open"  # operator, retained on operator/demands/<id>; cleared = closed
    TEMPLATE = "dsnode.contract.template"


class Action(StrEnum):
    """Evidence actions of membership and of the operator role."""

    SPACE_JOIN_REQUESTED = "space.join_requested"
    SPACE_JOINED = "space.joined"
    SPACE_JOIN_REJECTED = "space.join_rejected"
    SPACE_REVOKED = "space.revoked"
    SPACE_LEFT = "space.left"
    LISTING_REQUESTED = "listing.requested"
    LISTING_APPROVED = "listing.approved"
    LISTING_REJECTED = "listing.rejected"
    LISTING_WITHDRAWN = "listing.withdrawn"
    AGREEMENT_FILED = "contract.filed"
    SPACE_CREDENTIAL_UPDATED = "space.credential_updated"
    OPERATOR_SPACE_CREATED = "operator.space_created"
    OPERATOR_POLICIES_CHANGED = "operator.policies_changed"
    OPERATOR_INVITED = "operator.invitation_issued"
    OPERATOR_ADMITTED = "operator.member_admitted"
    OPERATOR_REJECTED = "operator.admission_rejected"
    OPERATOR_REVOKED = "operator.member_revoked"
    OPERATOR_MEMBER_LEFT = "operator.member_left"
    OPERATOR_LISTING_APPROVED = "operator.listing_approved"
    OPERATOR_LISTING_REJECTED = "operator.listing_rejected"
    OPERATOR_FILED = "operator.agreement_filed"
    OPERATOR_GRADE_CHANGED = "operator.member_grade_changed"
    OPERATOR_FILING_RETIRED = "operator.filing_retired"
    OPERATOR_DEMAND_PUBLISHED = "operator.demand_published"
    OPERATOR_DEMAND_CLOSED = "operator.demand_closed"
    OPERATOR_WITNESSED = "operator.checkpoint_witnessed"
    OPERATOR_ALERT = "operator.alert_raised"


def check_space_id(space_id: str) -> str:
    if not isinstance(space_id, str) or not SPACE_ID_RE.fullmatch(space_id):
        raise ValueError(f"space id {space_id!r} must be 3 to 64 characters of a-z, 0-9 and '-'")
    return space_id


def entry_sha256(entry: object) -> str:
    """Hex SHA-256 of the RFC 8785 bytes of a catalog entry or an agreement."""
    return sha256(canonical(entry)).hex()


# --- signed statements -----------------------------------------------------------------------


def sign_statement(key: SigningKey, statement: dict) -> dict:
    """Return ``statement`` with ``sig``: Ed25519 over the RFC 8785 bytes of every other field."""
    if "sig" in statement:
        raise ValueError("the statement is already signed")
    return {**statement, "sig": _b64url(key.sign(canonical(statement)))}


def verify_statement(statement: object, *, kind: str, signer: str, fields: dict[str, type]) -> dict:
    """Check a signed statement of type ``kind`` made by ``signer`` (a did:key); return it.

    ``fields`` names the fields besides ``v``/``type``/``sig`` and their JSON types; other fields
    are refused. Raises MalformedMessage for a wrong shape and BadSignature for a bad signature.
    """
    what = f"the {kind} statement"
    if not isinstance(statement, dict):
        raise MalformedMessage(f"{what} is not a JSON object")
    expected = {"v", "type", "sig", *fields}
    extra, missing = set(statement) - expected, expected - set(statement)
    if extra or missing:
        raise MalformedMessage(f"{what} has {'unknown' if extra else 'missing'} field "
                               f"{shown(sorted(extra or missing)[0])}")
    if statement["v"] != STATEMENT_VERSION or statement["type"] != kind:
        raise MalformedMessage(f"{what} has version {shown(statement['v'])} and type {shown(statement['type'])}")
    for name, typ in fields.items():
        if not isinstance(statement[name], typ) or (typ is int and isinstance(statement[name], bool)):
            raise MalformedMessage(f"field {name!r} of {what} has the wrong type")
    try:
        signature = _unb64url(statement["sig"])
        public_key = public_key_from_did(signer)
    except (ValueError, TypeError, MalformedDid):
        raise BadSignature(what) from None
    unsigned = {k: v for k, v in statement.items() if k != "sig"}
    try:
        signed_bytes = canonical(unsigned)
    except ValueError as e:  # a value canonical JSON cannot hold (an unsafe number, a lone surrogate)
        raise MalformedMessage(f"{what} {e}") from None
    verify(public_key, signed_bytes, signature, what=what)
    return statement


# --- membership credential -------------------------------------------------------------------


def issue_credential(key: SigningKey, *, operator_did: str, space_id: str, space_name: str, node_did: str,
                     name: str, org: str, member_since: str, valid_until: str, credential_id: str,
                     grade: int = GRADE_MIN, issued: str | None = None) -> dict:
    """A MembershipCredential for ``node_did`` in ``space_id`` with its member ``grade``, signed
    eddsa-jcs-2022 by the operator (``issued``: when, if re-issued after ``member_since``)."""
    grade = check_grade(grade)
    issued = issued or member_since
    document = {
        "@context": [VC_CONTEXT],
        "id": credential_id,
        "type": ["VerifiableCredential", CREDENTIAL_TYPE],
        "issuer": operator_did,
        "validFrom": issued,
        "validUntil": valid_until,
        "credentialSubject": {
            "id": node_did,
            "name": name,
            "org": org,
            "memberOf": space_id,
            "spaceName": space_name,
            "memberSince": member_since,
            "grade": grade,
        },
    }
    return sign_credential(document, key, verification_method=_verification_method(key.did), created=issued)


def check_grade(grade: object) -> int:
    """``grade`` if it is a member grade (an integer 1–5), else ValueError."""
    if not isinstance(grade, int) or isinstance(grade, bool) or grade not in GRADES:
        raise ValueError(f"a member grade is an integer from {GRADE_MIN} to {GRADE_MAX}, not {grade!r}")
    return grade


def credential_grade(subject: object) -> int:
    """The member grade in a verified credential subject; one without a (valid) grade is the lowest."""
    grade = subject.get("grade") if isinstance(subject, dict) else None
    try:
        return check_grade(grade)
    except ValueError:
        return GRADE_MIN


def check_credential(credential: object, *, operator_did: str, space_id: str, node_did: str | None = None,
                     now: datetime | None = None) -> dict:
    """Verify a MembershipCredential: proof by ``operator_did``, for ``space_id`` (and ``node_did``), in date.

    Returns the credential subject. Raises CredentialInvalid saying why not.
    """
    if not isinstance(credential, dict):
        raise CredentialInvalid("it is not a JSON object")
    if credential.get("issuer") != operator_did:
        raise CredentialInvalid(f"it was issued by {shown(credential.get('issuer'))}, "
                                f"not by the space operator {operator_did}")
    types = credential.get("type")
    if not isinstance(types, list) or CREDENTIAL_TYPE not in types:  # a string would match a part of it
        raise CredentialInvalid(f"it is not a {CREDENTIAL_TYPE}")
    proof = credential.get("proof")
    method = proof.get("verificationMethod") if isinstance(proof, dict) else None
    if not isinstance(method, str) or method.split("#")[0] != operator_did:
        raise CredentialInvalid("its proof was not made with the operator's key")
    verify_credential(credential)
    subject = credential.get("credentialSubject")
    if not isinstance(subject, dict) or subject.get("memberOf") != space_id:
        raise CredentialInvalid(f"it is not for space {space_id}")
    if node_did is not None and subject.get("id") != node_did:
        raise CredentialInvalid(f"it was issued to {shown(subject.get('id'))}, not to {node_did}")
    if now is not None:
        try:
            start, end = parse_rfc3339(credential["validFrom"]), parse_rfc3339(credential["validUntil"])
        except (KeyError, TypeError, ValueError):
            raise CredentialInvalid("its validity period cannot be read") from None
        if now < start:
            raise CredentialInvalid(f"it is valid only from {credential['validFrom']}")
        if now > end:
            raise CredentialInvalid(f"it expired on {credential['validUntil']}")
    return subject


def _verification_method(did: str) -> str:
    return f"{did}#{did.removeprefix('did:key:')}"


# --- revocation list -------------------------------------------------------------------------

REVOCATION_LIST = "dsnode.revocation-list"
_REVOCATION_FIELDS = {"space": str, "operator": str, "seq": int, "ts": str, "revoked": list}


def revocation_list(key: SigningKey, *, space_id: str, operator_did: str, seq: int, ts: str,
                    revoked: list[dict]) -> dict:
    """The signed list of revoked members: ``revoked`` = ``[{"did", "reason", "at"}, …]`` sorted by did."""
    entries = sorted(({"did": r["did"], "reason": r["reason"], "at": r["at"]} for r in revoked), key=lambda r: r["did"])
    return sign_statement(key, {"v": STATEMENT_VERSION, "type": REVOCATION_LIST, "space": space_id,
                                "operator": operator_did, "seq": seq, "ts": ts, "revoked": entries})


def check_revocation_list(statement: object, *, space_id: str, operator_did: str) -> dict:
    """Verify a revocation list from the operator of ``space_id``; return it."""
    stmt = verify_statement(statement, kind=REVOCATION_LIST, signer=operator_did, fields=_REVOCATION_FIELDS)
    if stmt["space"] != space_id or stmt["operator"] != operator_did:
        raise MalformedMessage(f"the revocation list is for space {shown(stmt['space'])}, not {space_id!r}")
    for item in stmt["revoked"]:
        if not isinstance(item, dict) or set(item) != {"did", "reason", "at"} or not isinstance(item["did"], str):
            raise MalformedMessage("an entry of the revocation list is not {did, reason, at}")
    return stmt


def revoked_dids(statement: dict) -> set[str]:
    return {item["did"] for item in statement["revoked"]}


# --- listing approval ------------------------------------------------------------------------

LISTING_APPROVAL = "dsnode.listing-approval"
_APPROVAL_FIELDS = {"space": str, "operator": str, "provider": str, "dataset": str, "entry_sha256": str,
                    "approvedAt": str}


def listing_approval(key: SigningKey, *, space_id: str, operator_did: str, provider: str, dataset_id: str,
                     entry: dict, approved_at: str) -> dict:
    """The operator's signed approval of ``provider``'s catalog ``entry`` for ``dataset_id``."""
    return sign_statement(key, {"v": STATEMENT_VERSION, "type": LISTING_APPROVAL, "space": space_id,
                                "operator": operator_did, "provider": provider, "dataset": dataset_id,
                                "entry_sha256": entry_sha256(entry), "approvedAt": approved_at})


def check_listing_approval(approval: object, *, space_id: str, operator_did: str, provider: str,
                           dataset_id: str, entry: dict) -> dict:
    """Verify that ``approval`` is the operator's approval of exactly this entry by this provider."""
    stmt = verify_statement(approval, kind=LISTING_APPROVAL, signer=operator_did, fields=_APPROVAL_FIELDS)
    named = (stmt["space"], stmt["operator"], stmt["provider"], stmt["dataset"])
    if named != (space_id, operator_did, provider, dataset_id):
        raise MalformedMessage("the listing approval is for another space, provider or dataset")
    if stmt["entry_sha256"] != entry_sha256(entry):
        raise MalformedMessage("the catalog entry was changed after the operator approved it")
    return stmt


# --- filing receipt --------------------------------------------------------------------------

FILING_RECEIPT = "dsnode.filing-receipt"
_RECEIPT_FIELDS = {"space": str, "operator": str, "agreement_sha256": str, "filed_by": str, "filedAt": str}


def filing_receipt(key: SigningKey, *, space_id: str, operator_did: str, agreement: dict, filed_by: str,
                   filed_at: str) -> dict:
    """The operator's signed receipt for an agreement filed with it (备案)."""
    return sign_statement(key, {"v": STATEMENT_VERSION, "type": FILING_RECEIPT, "space": space_id,
                                "operator": operator_did, "agreement_sha256": entry_sha256(agreement),
                                "filed_by": filed_by, "filedAt": filed_at})


def check_filing_receipt(receipt: object, *, space_id: str, operator_did: str, agreement: dict | None = None,
                         agreement_sha256: str | None = None) -> dict:
    """Verify the operator's receipt for ``agreement`` (or for the agreement with that SHA-256)."""
    digest = agreement_sha256 if agreement is None else entry_sha256(agreement)
    stmt = verify_statement(receipt, kind=FILING_RECEIPT, signer=operator_did, fields=_RECEIPT_FIELDS)
    if stmt["space"] != space_id or stmt["agreement_sha256"] != digest:
        raise MalformedMessage("the filing receipt is for another space or another agreement")
    return stmt


# --- base64url -------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- events on the node's bus, and listing rows ---------------------------------------------


@dataclass(frozen=True)
class JoinPending:
    space_id: str


@dataclass(frozen=True)
class SpaceJoined:
    space_id: str
    credential_id: str


@dataclass(frozen=True)
class CredentialUpdated:
    """The operator re-issued this node's credential in a space (e.g. with a new grade)."""

    space_id: str
    credential_id: str
    grade: int


@dataclass(frozen=True)
class JoinRejected:
    space_id: str
    reason: str


@dataclass(frozen=True)
class RevokedInSpace:
    """This node was revoked in a space."""

    space_id: str
    reason: str


@dataclass(frozen=True)
class ListingDecided:
    space_id: str
    dataset_id: str
    approved: bool
    reason: str | None = None


@dataclass(frozen=True)
class CheckpointWitnessed:
    space_id: str
    size: int


@dataclass(frozen=True)
class AgreementFiled:
    space_id: str
    agreement_sha256: str


@dataclass(frozen=True)
class Listing:
    space_id: str
    dataset_id: str
    status: str
    reason: str | None
    approval: dict | None


# --- who is revoked --------------------------------------------------------------------------
