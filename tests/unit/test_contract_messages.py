"""Contract messages, agreements and approval rules, without a network."""

from __future__ import annotations

import pytest

from appliance.crypto.keys import SigningKey
from appliance.domain.negotiation import Event
from appliance.errors import ContractError
from appliance.services.contracts import agreement as agreements
from appliance.services.contracts import messages
from appliance.services.contracts.approvals import Rule

OFFER = {"@id": "urn:offer:1", "@type": "Offer", "target": "ds-1", "permission": [{"action": "use"}]}


def test_every_builder_validates_against_the_dsp_schemas_and_names_its_event():
    key = SigningKey.generate()
    doc = agreements.build(OFFER, agreement_id="urn:a:1", target="ds-1", assigner="did:p", assignee="did:c",
                           timestamp="2026-11-22T10:00:00.000Z")
    built = [
        (messages.request("c1", None, OFFER, callback="mqtt:inbox/x"), Event.REQUEST),
        (messages.request("c1", "p1", OFFER, callback=""), Event.REQUEST),
        (messages.offer("p1", None, OFFER, callback="mqtt:inbox/y"), Event.OFFER),
        (messages.offer("p1", "c1", OFFER, callback=""), Event.OFFER),
        (messages.event("c1", "p1", "ACCEPTED"), Event.ACCEPT),
        (messages.agreement("c1", "p1", doc, agreements.sign(key, doc)), Event.AGREE),
        (messages.verification("c1", "p1", agreements.sign(key, doc)), Event.VERIFY),
        (messages.event("c1", "p1", "FINALIZED"), Event.FINALIZE),
        (messages.termination("c1", "p1", "rejected", "不在服务区域"), Event.TERMINATE),
    ]
    for body, event in built:
        assert messages.problems(body) == [], body
        assert messages.parse(body) is event


def test_an_invalid_body_is_refused_with_the_schema_problem():
    with pytest.raises(ContractError, match="consumerPid"):
        messages.parse({"@context": messages.CONTEXT, "@type": "ContractAgreementVerificationMessage",
                        "providerPid": "p1"})
    assert messages.problems({"@type": "Nonsense"})


def test_a_forged_signature_or_altered_terms_do_not_verify():
    provider = SigningKey.generate()
    doc = agreements.build(OFFER, agreement_id="urn:a:1", target="ds-1", assigner=provider.did, assignee="did:c",
                           timestamp="2026-11-22T10:00:00.000Z")
    signature = agreements.sign(provider, doc)
    agreements.verify(doc, signature, signer_keys=(provider.did,), offer=OFFER, parties=(provider.did, "did:c"))
    forged = {**agreements.sign(SigningKey.generate(), doc), "verificationMethod": provider.did}
    with pytest.raises(ContractError, match="does not verify"):
        agreements.verify(doc, forged, signer_keys=(provider.did,))
    altered = {**doc, "permission": [{"action": "distribute"}]}
    with pytest.raises(ContractError, match="does not verify"):
        agreements.verify(altered, signature, signer_keys=(provider.did,))
    with pytest.raises(ContractError, match="differ"):
        agreements.verify(altered, signature, signer_keys=(provider.did,), offer=OFFER)


def test_rules_match_by_dataset_offer_and_org():
    rule = Rule.from_dict({"dataset": "ds-1", "offer": "urn:offer:trial", "orgs": ["示例制造"]})
    assert rule.matches(dataset="ds-1", offer_id="urn:offer:trial", peer="did:x", org="示例制造")
    assert not rule.matches(dataset="ds-1", offer_id="urn:offer:paid", peer="did:x", org="示例制造")
    assert not rule.matches(dataset="ds-1", offer_id="urn:offer:trial", peer="did:x", org="别家")
    assert Rule.from_dict(rule.to_dict()) == rule
    with pytest.raises(ValueError):
        Rule.from_dict({"grade": 3})
