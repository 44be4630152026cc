"""Member grades: in the credential, in auto-approval rules, and constraint failures a request names."""

from datetime import datetime, timezone

import pytest

from appliance.crypto.keys import SigningKey
from appliance.crypto.vc import sign_credential
from appliance.domain import membership as m
from appliance.services.membership import statements as st
from appliance.domain import odrl
from appliance.services.contracts.approvals import Rule
from appliance.services.contracts.terms import FAILURES, explain, failure_json

OPERATOR = SigningKey.from_seed(b"\x01" * 32)
NODE = SigningKey.from_seed(b"\x02" * 32).did
NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _credential(**over):
    args = dict(operator_did=OPERATOR.did, space_id="space-1", space_name="空间", node_did=NODE, name="n", org="o",
                member_since="2026-01-01T00:00:00Z", valid_until="2027-01-01T00:00:00Z", credential_id="urn:uuid:1")
    return st.issue_credential(OPERATOR, **{**args, **over})


def test_the_grade_travels_in_the_signed_credential():
    subject = st.check_credential(_credential(grade=4), operator_did=OPERATOR.did, space_id="space-1", now=NOW)
    assert m.credential_grade(subject) == 4
    assert m.credential_grade(st.check_credential(_credential(), operator_did=OPERATOR.did, space_id="space-1")) == 1


def test_an_old_credential_without_a_grade_counts_as_the_lowest():
    doc = {"@context": [m.VC_CONTEXT], "id": "urn:uuid:old", "type": ["VerifiableCredential", m.CREDENTIAL_TYPE],
           "issuer": OPERATOR.did, "validFrom": "2026-01-01T00:00:00Z", "validUntil": "2027-01-01T00:00:00Z",
           "credentialSubject": {"id": NODE, "name": "n", "org": "o", "memberOf": "space-1"}}
    old = sign_credential(doc, OPERATOR, verification_method=f"{OPERATOR.did}#{OPERATOR.did[8:]}",
                          created="2026-01-01T00:00:00Z")
    subject = st.check_credential(old, operator_did=OPERATOR.did, space_id="space-1", now=NOW)
    assert m.credential_grade(subject) == m.GRADE_MIN


@pytest.mark.parametrize("grade", [0, 6, "3", True, None])
def test_a_grade_outside_1_to_5_is_refused(grade):
    with pytest.raises(ValueError):
        _credential(grade=grade)
    with pytest.raises(ValueError):
        Rule(min_grade=grade if grade is not None else 9)


def test_a_rule_with_a_minimum_grade_matches_that_grade_and_above():
    rule = Rule.from_dict({"offer": "urn:offer:trial", "min_grade": 3})
    assert rule.to_dict() == {"offer": "urn:offer:trial", "min_grade": 3}
    common = dict(dataset="ds", offer_id="urn:offer:trial", peer="did:key:x", org="")
    assert [rule.matches(**common, grade=g) for g in (1, 2, 3, 5)] == [False, False, True, True]
    assert Rule.from_dict({"offer": "urn:offer:trial"}).matches(**common)  # no grade asked: any member


def _unmet(constraint: dict, **ctx) -> list:
    policy = odrl.parse({"@type": "Offer", "@id": "urn:o",
                         "permission": [{"action": "use", "constraint": [constraint]}]})
    return odrl.negotiable(policy, {"now": NOW, **ctx})


def test_negotiation_names_the_constraint_the_request_does_not_meet():
    (f,) = _unmet({"leftOperand": "purpose", "operator": "eq", "rightOperand": "https://w3id.org/dpv#Marketing"},
                  purpose="https://w3id.org/dpv#AcademicResearch")
    assert f.constraint == "purpose eq dpv:Marketing"  # as written, namespace compacted
    assert failure_json(f)["given"] == "https://w3id.org/dpv#AcademicResearch"  # the value exactly as given
    assert "营销" in f.zh and "marketing" in f.en and "“学术研究”" in f.zh and '"academic research"' in f.en
    grade = {"leftOperand": odrl.RECIPIENT_GRADE, "operator": "gteq", "rightOperand": {"@value": "3",
                                                                                         "@type": "xsd:integer"}}
    assert _unmet(grade, recipient={"grade": 3}) == []
    assert [f.code for f in _unmet(grade, recipient={"grade": 2})] == ["mismatch"]


def test_what_a_request_does_not_state_is_left_to_usage_control():
    assert _unmet({"leftOperand": "purpose", "operator": "eq", "rightOperand": "x"}) == []
    assert _unmet({"leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": {
        "@value": "P30D", "@type": "xsd:duration"}}) == []


def test_a_terminated_step_explains_itself_in_either_language():
    (f,) = _unmet({"leftOperand": "spatial", "operator": "isPartOf", "rightOperand": "CN-SH"}, region="CN-BJ")
    message = {FAILURES: [failure_json(f)]}
    assert "上海" in explain("x", message, "zh_CN") and "“北京”" in explain("x", message, "zh_CN")
    assert "Shanghai" in explain("x", message, "en") and '"Beijing"' in explain("x", message, "en")
    assert failure_json(f)["given"] == "CN-BJ"
    assert explain("plain reason", None, "zh_CN") == "plain reason"
