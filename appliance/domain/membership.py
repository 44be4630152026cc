"""Space membership and governance: message types, evidence actions and the operator's signed statements.

Everything here is pure: it builds the unsigned JSON documents and checks what they say, and
touches no keys, store or network (:mod:`appliance.crypto.statement` signs and verifies statements,
:mod:`appliance.services.membership.statements` puts the two together). The operator signs four
kinds of statement, each a JSON object whose ``sig`` is the Ed25519 signature (base64url) over the
RFC 8785 bytes of every other field, version included:

* the revocation list (``dsnode.revocation-list``), published retained to ``operator/revocations``;
* a listing approval (``dsnode.listing-approval``) that a provider attaches to its catalog entry;
* a filing receipt (``dsnode.filing-receipt``) for an agreement filed with the operator (备案);
* the invitation (``dsnode.invitation``, in :mod:`appliance.services.membership.invitation`).

Membership itself is a W3C Verifiable Credential (``MembershipCredential``) secured with
``eddsa-jcs-2022``, issued by the operator's did:key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from appliance.clock import parse_rfc3339
from appliance.errors import CredentialInvalid, LocalText, MalformedMessage, shown

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
    OPERATOR_DELIVERY_FILED = "operator.delivery_filed"
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


# --- signed statements: what each kind holds (signed and checked in appliance.crypto.statement) ---


def statement_body(kind: str, **fields: object) -> dict:
    """The unsigned statement of type ``kind`` with ``fields`` (the signer adds ``sig``)."""
    return {"v": STATEMENT_VERSION, "type": kind, **fields}


# --- membership credential -------------------------------------------------------------------


def credential_document(*, operator_did: str, space_id: str, space_name: str, node_did: str, name: str, org: str,
                        member_since: str, valid_until: str, credential_id: str, grade: int = GRADE_MIN,
                        issued: str | None = None) -> dict:
    """The unsigned MembershipCredential for ``node_did`` in ``space_id`` with its member ``grade``
    (``issued``: when, if re-issued after ``member_since``); the operator secures it eddsa-jcs-2022."""
    grade = check_grade(grade)
    issued = issued or member_since
    return {
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


def _invalid(key: str, *args: object) -> CredentialInvalid:
    return CredentialInvalid(LocalText(f"domain.reason.credential_{key}", *args))


def check_credential_issuer(credential: object, *, operator_did: str) -> dict:
    """What is checked before the proof: a MembershipCredential issued, and proved, by ``operator_did``.

    Returns the credential. Raises CredentialInvalid saying why not.
    """
    if not isinstance(credential, dict):
        raise _invalid("not_object")
    if credential.get("issuer") != operator_did:
        raise _invalid("other_issuer", shown(credential.get("issuer")), operator_did)
    types = credential.get("type")
    if not isinstance(types, list) or CREDENTIAL_TYPE not in types:  # a string would match a part of it
        raise _invalid("wrong_type", CREDENTIAL_TYPE)
    proof = credential.get("proof")
    method = proof.get("verificationMethod") if isinstance(proof, dict) else None
    if not isinstance(method, str) or method.split("#")[0] != operator_did:
        raise _invalid("other_key")
    return credential


def check_credential_subject(credential: dict, *, space_id: str, node_did: str | None = None,
                             now: datetime | None = None) -> dict:
    """What is checked after the proof: for ``space_id`` (and ``node_did``), in date at ``now``.

    Returns the credential subject. Raises CredentialInvalid saying why not.
    """
    subject = credential.get("credentialSubject")
    if not isinstance(subject, dict) or subject.get("memberOf") != space_id:
        raise _invalid("other_space", space_id)
    if node_did is not None and subject.get("id") != node_did:
        raise _invalid("other_node", shown(subject.get("id")), node_did)
    if now is not None:
        try:
            start, end = parse_rfc3339(credential["validFrom"]), parse_rfc3339(credential["validUntil"])
        except (KeyError, TypeError, ValueError):
            raise _invalid("unreadable_dates") from None
        if now < start:
            raise _invalid("not_yet_valid", credential["validFrom"])
        if now > end:
            raise _invalid("expired", credential["validUntil"])
    return subject


def verification_method(did: str) -> str:
    """The DID URL of a did:key's own key (how a credential proof names it)."""
    return f"{did}#{did.removeprefix('did:key:')}"


# --- revocation list -------------------------------------------------------------------------

REVOCATION_LIST = "dsnode.revocation-list"
REVOCATION_FIELDS = {"space": str, "operator": str, "seq": int, "ts": str, "revoked": list}


def revocation_list_body(*, space_id: str, operator_did: str, seq: int, ts: str, revoked: list[dict]) -> dict:
    """The unsigned list of revoked members: ``revoked`` = ``[{"did", "reason", "at"}, …]`` sorted by did."""
    entries = sorted(({"did": r["did"], "reason": r["reason"], "at": r["at"]} for r in revoked), key=lambda r: r["did"])
    return statement_body(REVOCATION_LIST, space=space_id, operator=operator_did, seq=seq, ts=ts, revoked=entries)


def check_revocation_list_body(stmt: dict, *, space_id: str, operator_did: str) -> dict:
    """A verified revocation list is for ``space_id`` and each entry is ``{did, reason, at}``; return it."""
    if stmt["space"] != space_id or stmt["operator"] != operator_did:
        raise MalformedMessage(LocalText("domain.reason.revocations_other_space", shown(stmt["space"]),
                                         repr(space_id)))
    for item in stmt["revoked"]:
        if not isinstance(item, dict) or set(item) != {"did", "reason", "at"} or not isinstance(item["did"], str):
            raise MalformedMessage(LocalText("domain.reason.revocations_bad_entry"))
    return stmt


def revoked_dids(statement: dict) -> set[str]:
    return {item["did"] for item in statement["revoked"]}


# --- listing approval ------------------------------------------------------------------------

LISTING_APPROVAL = "dsnode.listing-approval"
APPROVAL_FIELDS = {"space": str, "operator": str, "provider": str, "dataset": str, "entry_sha256": str,
                   "approvedAt": str}


def listing_approval_body(*, space_id: str, operator_did: str, provider: str, dataset_id: str, entry_digest: str,
                          approved_at: str) -> dict:
    """The operator's unsigned approval of ``provider``'s catalog entry (its SHA-256) for ``dataset_id``."""
    return statement_body(LISTING_APPROVAL, space=space_id, operator=operator_did, provider=provider,
                          dataset=dataset_id, entry_sha256=entry_digest, approvedAt=approved_at)


def check_listing_approval_body(stmt: dict, *, space_id: str, operator_did: str, provider: str, dataset_id: str,
                                entry_digest: str) -> dict:
    """A verified approval is of exactly this entry (its SHA-256) by this provider; return it."""
    named = (stmt["space"], stmt["operator"], stmt["provider"], stmt["dataset"])
    if named != (space_id, operator_did, provider, dataset_id):
        raise MalformedMessage(LocalText("domain.reason.approval_other_listing"))
    if stmt["entry_sha256"] != entry_digest:
        raise MalformedMessage(LocalText("domain.reason.approval_entry_changed"))
    return stmt


# --- filing receipt --------------------------------------------------------------------------

FILING_RECEIPT = "dsnode.filing-receipt"
RECEIPT_FIELDS = {"space": str, "operator": str, "agreement_sha256": str, "filed_by": str, "filedAt": str}


def filing_receipt_body(*, space_id: str, operator_did: str, agreement_digest: str, filed_by: str,
                        filed_at: str) -> dict:
    """The operator's unsigned receipt for an agreement (its SHA-256) filed with it (备案)."""
    return statement_body(FILING_RECEIPT, space=space_id, operator=operator_did, agreement_sha256=agreement_digest,
                          filed_by=filed_by, filedAt=filed_at)


def check_filing_receipt_body(stmt: dict, *, space_id: str, agreement_digest: str | None) -> dict:
    """A verified receipt is for ``space_id`` and the agreement with that SHA-256; return it."""
    if stmt["space"] != space_id or stmt["agreement_sha256"] != agreement_digest:
        raise MalformedMessage(LocalText("domain.reason.receipt_other_agreement"))
    return stmt


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
