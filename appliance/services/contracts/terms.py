"""What the provider knows about a request before deciding it: who the consumer is in the space
(its grade and organisation, from its operator-signed membership credential) and whether the offer's
constraints can be met by what the request states (purpose, region) and by that grade.

The credential travels in the request (``dsnode:membershipCredential``) and in the consumer's node
card; either is checked against the space operator's key, so a consumer cannot claim a grade it was
not given. No valid credential, or an old one without a grade, counts as the lowest grade.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from appliance import i18n
from appliance.domain import odrl
from appliance.domain.membership import GRADE_MIN, credential_grade
from appliance.services.membership.statements import check_credential
from appliance.errors import ApplianceError
from appliance.services.contracts import messages

CREDENTIAL = "dsnode:membershipCredential"  # request extension: the consumer's credential
USE_CONTEXT = "dsnode:useContext"  # request extension: {"purpose": …, "region": …} the consumer states
FAILURES = "dsnode:failures"  # termination extension: the constraints that failed, in zh_CN and en


@dataclass(frozen=True)
class Member:
    did: str
    grade: int
    org: str
    verified: bool  # the grade and org come from a valid credential


def offer_summary(offer: object, lang: str | None = None) -> str:
    """An offer's terms in plain words, in ``lang`` (the user's language when not given); a received
    offer that is not valid ODRL says so."""
    lang = lang or i18n.get_lang()
    policy, problems = odrl.from_jsonld(offer)
    if policy is None or problems:
        return ("; " if lang.startswith("en") else "；").join(p.message(lang) for p in problems[:3]) or "-"
    return odrl.summarize(policy, lang)


def member(conn, space_id: str, did: str, offered: object, now: datetime) -> Member:
    """The consumer ``did`` as its credential (from the request, else its card) shows it."""
    row = conn.execute("SELECT operator_did FROM sync_space WHERE space_id = ?", (space_id,)).fetchone()
    peer = None

    def candidates():  # the card is read only when the request's own credential does not do
        nonlocal peer
        yield offered
        peer = conn.execute("SELECT org, card FROM sync_peer WHERE space_id = ? AND did = ?",
                            (space_id, did)).fetchone()
        card = json.loads(peer[1]) if peer and peer[1] else {}
        yield card.get("credential") if isinstance(card, dict) else None

    for credential in candidates():
        if not isinstance(credential, dict):
            continue
        try:
            subject = check_credential(credential, operator_did=row[0] if row else "", space_id=space_id,
                                       node_did=did, now=now)
        except ApplianceError:
            continue
        return Member(did, credential_grade(subject), str(subject.get("org") or ""), True)
    return Member(did, GRADE_MIN, peer[0] if peer and peer[0] else "", False)


def use_context(body: dict) -> tuple[str | None, str | None]:
    """The purpose and region a request states (None when it states none)."""
    ctx = body.get(USE_CONTEXT)
    ctx = ctx if isinstance(ctx, dict) else {}
    purpose, region = ctx.get("purpose"), ctx.get("region")
    return (purpose if isinstance(purpose, str) and purpose else None,
            region if isinstance(region, str) and region else None)


def unmet(offer: dict, body: dict, who: Member, now: datetime) -> list[odrl.Failure]:
    """The offer's constraints the request does not meet (purpose, region, grade, org, recipient, period)."""
    policy, problems = odrl.from_jsonld(offer)
    if policy is None or problems:
        return []  # terms this node cannot read are for a person to judge
    purpose, region = use_context(body)
    return odrl.negotiable(policy, {"now": now, "purpose": purpose, "region": region, "start": now,
                                    "recipient": {"did": who.did, "org": who.org, "grade": who.grade}})


def failure_json(f: odrl.Failure) -> dict:
    """A failed constraint for the termination message and the timeline: the constraint as written,
    the value the request gave, and the reason in both languages."""
    return {"code": f.code, "constraint": f.constraint, "given": f.args.get("value"), "zh_CN": f.zh, "en": f.en}


def explain(reason: str, message: dict | None, lang: str) -> str:
    """A step's or negotiation's reason in ``lang``: the failed constraints when the message names
    them, else the message's coded reason when it is the one recorded (a refused message's own
    reason is not the refusal's), else the reason as recorded."""
    failures = message.get(FAILURES) if isinstance(message, dict) else None
    if isinstance(failures, list) and failures:
        key = "en" if lang.startswith("en") else "zh_CN"
        texts = [str(f.get(key) or f.get("en") or "") for f in failures if isinstance(f, dict)]
        if any(texts):
            return ("; " if key == "en" else "；").join(t for t in texts if t)
    coded = messages.reason_of(message)
    if coded is not None and coded.message("en") == reason:
        return coded.message("en" if lang.startswith("en") else "zh_CN")
    return reason
