"""The operator's signed statements as a peer may send them: a membership credential, a
revocation list, a listing approval and a filing receipt with any one value changed (or any JSON
at all) are accepted only when untouched, and refused with the caller's error types otherwise."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given

from appliance.crypto.keys import SigningKey
from appliance.domain import membership as m
from appliance.services.membership import statements as st
from appliance.errors import BadSignature, CredentialInvalid, MalformedMessage
from tests.fuzz.values import json_values, mutations
from tests.fuzzing import fuzz

OPERATOR = SigningKey.from_seed(b"\x01" * 32)
NODE = SigningKey.from_seed(b"\x02" * 32).did
SPACE = "shanghai-auto-parts"
NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)

CREDENTIAL = st.issue_credential(
    OPERATOR, operator_did=OPERATOR.did, space_id=SPACE, space_name="上海汽配", node_did=NODE, name="车间一号",
    org="示例制造", member_since="2026-01-01T00:00:00.000Z", valid_until="2027-01-01T00:00:00.000Z",
    credential_id="urn:uuid:3f1c2a9e-0000-4000-8000-000000000001", grade=3)
ENTRY = {"dataset": "ds-1", "title": "零件库存"}
REVOCATIONS = st.revocation_list(OPERATOR, space_id=SPACE, operator_did=OPERATOR.did, seq=3,
                                 ts="2026-05-01T00:00:00.000Z",
                                 revoked=[{"did": NODE, "reason": "left", "at": "2026-05-01T00:00:00.000Z"}])
APPROVAL = st.listing_approval(OPERATOR, space_id=SPACE, operator_did=OPERATOR.did, provider=NODE, dataset_id="ds-1",
                               entry=ENTRY, approved_at="2026-05-01T00:00:00.000Z")
RECEIPT = st.filing_receipt(OPERATOR, space_id=SPACE, operator_did=OPERATOR.did, agreement=ENTRY, filed_by=NODE,
                            filed_at="2026-05-01T00:00:00.000Z")

CHECKS = {
    "credential": (CREDENTIAL, lambda d: st.check_credential(d, operator_did=OPERATOR.did, space_id=SPACE,
                                                             node_did=NODE, now=NOW)),
    "revocations": (REVOCATIONS, lambda d: m.revoked_dids(st.check_revocation_list(
        d, space_id=SPACE, operator_did=OPERATOR.did))),
    "approval": (APPROVAL, lambda d: st.check_listing_approval(d, space_id=SPACE, operator_did=OPERATOR.did,
                                                               provider=NODE, dataset_id="ds-1", entry=ENTRY)),
    "receipt": (RECEIPT, lambda d: st.check_filing_receipt(d, space_id=SPACE, operator_did=OPERATOR.did,
                                                           agreement=ENTRY)),
}
REFUSALS = (BadSignature, CredentialInvalid, MalformedMessage)


def test_the_untouched_statements_are_accepted():
    for doc, check in CHECKS.values():
        check(doc)


def _refused_or_same(name: str, doc: object) -> None:
    original, check = CHECKS[name]
    try:
        check(doc)
    except REFUSALS as e:
        assert str(e)
        return
    assert doc == original, "a changed statement was accepted"


@fuzz
@given(doc=mutations(CREDENTIAL) | json_values())
def test_a_changed_credential_is_refused_as_invalid(doc):
    _refused_or_same("credential", doc)


@fuzz
@given(doc=mutations(REVOCATIONS) | mutations(APPROVAL) | mutations(RECEIPT) | json_values())
def test_a_changed_statement_is_refused_as_malformed_or_badly_signed(doc):
    for name in ("revocations", "approval", "receipt"):
        _refused_or_same(name, doc)
