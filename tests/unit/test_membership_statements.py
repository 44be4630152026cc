"""The operator's signed statements: membership credentials, revocation lists, approvals, receipts."""

from datetime import datetime, timezone

import pytest

from appliance.crypto.keys import SigningKey
from appliance.domain import membership as m
from appliance.crypto.statement import entry_sha256
from appliance.services.membership import statements as st
from appliance.errors import BadSignature, CredentialInvalid, MalformedMessage

OPERATOR = SigningKey.from_seed(b"\x01" * 32)
NODE = SigningKey.from_seed(b"\x02" * 32).did
SPACE = "shanghai-auto-parts"


def _credential(key=OPERATOR, **over):
    args = dict(operator_did=key.did, space_id=SPACE, space_name="上海汽配", node_did=NODE, name="车间一号",
                org="示例制造", member_since="2026-01-01T00:00:00.000Z", valid_until="2027-01-01T00:00:00.000Z",
                credential_id="urn:uuid:3f1c2a9e-0000-4000-8000-000000000001")
    args.update(over)
    return st.issue_credential(key, **args)


def test_a_membership_credential_verifies_for_its_node_and_space():
    vc = _credential()
    assert vc["proof"]["cryptosuite"] == "eddsa-jcs-2022" and vc["issuer"] == OPERATOR.did
    subject = st.check_credential(vc, operator_did=OPERATOR.did, space_id=SPACE, node_did=NODE,
                                  now=datetime(2026, 6, 1, tzinfo=timezone.utc))
    assert subject["name"] == "车间一号" and subject["memberOf"] == SPACE


@pytest.mark.parametrize("change, reason", [
    (lambda vc: vc["credentialSubject"].update(org="冒名公司"), "signature"),
    (lambda vc: vc.update(validUntil="2099-01-01T00:00:00.000Z"), "signature"),
])
def test_a_changed_credential_is_refused(change, reason):
    vc = _credential()
    change(vc)
    with pytest.raises(CredentialInvalid, match=reason):
        st.check_credential(vc, operator_did=OPERATOR.did, space_id=SPACE)


def test_a_credential_from_another_issuer_is_refused():
    other = SigningKey.generate()
    vc = _credential(key=other)
    with pytest.raises(CredentialInvalid, match="not by the space operator"):
        st.check_credential(vc, operator_did=OPERATOR.did, space_id=SPACE)
    vc["issuer"] = OPERATOR.did  # claims the operator, signed by someone else
    with pytest.raises(CredentialInvalid):
        st.check_credential(vc, operator_did=OPERATOR.did, space_id=SPACE)


def test_a_credential_for_another_node_space_or_time_is_refused():
    vc = _credential()
    with pytest.raises(CredentialInvalid, match="issued to"):
        st.check_credential(vc, operator_did=OPERATOR.did, space_id=SPACE, node_did=SigningKey.generate().did)
    with pytest.raises(CredentialInvalid, match="space"):
        st.check_credential(vc, operator_did=OPERATOR.did, space_id="other-space")
    with pytest.raises(CredentialInvalid, match="expired"):
        st.check_credential(vc, operator_did=OPERATOR.did, space_id=SPACE,
                            now=datetime(2027, 2, 1, tzinfo=timezone.utc))


def test_a_revocation_list_verifies_and_names_the_revoked():
    stmt = st.revocation_list(OPERATOR, space_id=SPACE, operator_did=OPERATOR.did, seq=3, ts="2026-02-01T00:00:00.000Z",
                              revoked=[{"did": NODE, "reason": "合同违约", "at": "2026-02-01T00:00:00.000Z"}])
    assert m.revoked_dids(st.check_revocation_list(stmt, space_id=SPACE, operator_did=OPERATOR.did)) == {NODE}


def test_a_revocation_list_that_drops_a_name_or_comes_from_elsewhere_is_refused():
    stmt = st.revocation_list(OPERATOR, space_id=SPACE, operator_did=OPERATOR.did, seq=3, ts="2026-02-01T00:00:00.000Z",
                              revoked=[{"did": NODE, "reason": "x", "at": "2026-02-01T00:00:00.000Z"}])
    with pytest.raises(BadSignature):
        st.check_revocation_list({**stmt, "revoked": []}, space_id=SPACE, operator_did=OPERATOR.did)
    with pytest.raises(BadSignature):
        st.check_revocation_list(stmt, space_id=SPACE, operator_did=SigningKey.generate().did)
    with pytest.raises(MalformedMessage):
        st.check_revocation_list(stmt, space_id="other-space", operator_did=OPERATOR.did)
    with pytest.raises(MalformedMessage):
        st.check_revocation_list({**stmt, "extra": 1}, space_id=SPACE, operator_did=OPERATOR.did)
    with pytest.raises(MalformedMessage):
        st.check_revocation_list("junk", space_id=SPACE, operator_did=OPERATOR.did)


def test_a_listing_approval_covers_exactly_the_approved_entry():
    entry = {"@type": "dcat:Dataset", "dct:title": "注塑机温度", "offers": [{"price": "100 CNY"}]}
    approval = st.listing_approval(OPERATOR, space_id=SPACE, operator_did=OPERATOR.did, provider=NODE,
                                   dataset_id="urn:ds:1", entry=entry, approved_at="2026-02-01T00:00:00.000Z")
    st.check_listing_approval(approval, space_id=SPACE, operator_did=OPERATOR.did, provider=NODE,
                              dataset_id="urn:ds:1", entry=entry)
    with pytest.raises(MalformedMessage, match="changed"):
        st.check_listing_approval(approval, space_id=SPACE, operator_did=OPERATOR.did, provider=NODE,
                                  dataset_id="urn:ds:1", entry={**entry, "offers": []})
    with pytest.raises(MalformedMessage):
        st.check_listing_approval(approval, space_id=SPACE, operator_did=OPERATOR.did,
                                  provider=SigningKey.generate().did, dataset_id="urn:ds:1", entry=entry)
    forged = st.listing_approval(SigningKey.generate(), space_id=SPACE, operator_did=OPERATOR.did, provider=NODE,
                                 dataset_id="urn:ds:1", entry=entry, approved_at="2026-02-01T00:00:00.000Z")
    with pytest.raises(BadSignature):
        st.check_listing_approval(forged, space_id=SPACE, operator_did=OPERATOR.did, provider=NODE,
                                  dataset_id="urn:ds:1", entry=entry)


def test_a_filing_receipt_names_the_agreement_hash():
    agreement = {"id": "urn:agreement:1", "parties": [NODE], "signatures": ["…"]}
    receipt = st.filing_receipt(OPERATOR, space_id=SPACE, operator_did=OPERATOR.did, agreement=agreement,
                                filed_by=NODE, filed_at="2026-02-01T00:00:00.000Z")
    stmt = st.check_filing_receipt(receipt, space_id=SPACE, operator_did=OPERATOR.did, agreement=agreement)
    assert stmt["agreement_sha256"] == entry_sha256(agreement)
    with pytest.raises(MalformedMessage):
        st.check_filing_receipt(receipt, space_id=SPACE, operator_did=OPERATOR.did, agreement={**agreement, "id": "x"})


@pytest.mark.parametrize("space_id", ["ab", "UPPER", "has space", "a/b", "x" * 65, "tds#"])
def test_space_ids_are_topic_safe(space_id):
    with pytest.raises(ValueError):
        m.check_space_id(space_id)


def test_why_a_credential_or_a_statement_is_refused_reads_in_chinese():
    vc = _credential()
    with pytest.raises(CredentialInvalid) as err:
        st.check_credential(vc, operator_did=OPERATOR.did, space_id=SPACE,
                            now=datetime(2027, 2, 1, tzinfo=timezone.utc))
    assert err.value.message("en") == "The credential cannot be accepted: it expired on 2027-01-01T00:00:00.000Z"
    assert err.value.message("zh_CN") == "凭证无法接受：它已于 2027-01-01T00:00:00.000Z 过期"
    stmt = st.revocation_list(OPERATOR, space_id=SPACE, operator_did=OPERATOR.did, seq=1, ts="2026-02-01T00:00:00.000Z",
                              revoked=[])
    with pytest.raises(MalformedMessage) as err:
        st.check_revocation_list({**stmt, "extra": 1}, space_id=SPACE, operator_did=OPERATOR.did)
    assert err.value.message("en") == ("A message could not be read: "
                                       "the dsnode.revocation-list statement has unknown field 'extra'")
    assert err.value.message("zh_CN") == "无法读取消息：声明 dsnode.revocation-list 含有未知字段 'extra'"
