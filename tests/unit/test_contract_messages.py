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


def test_a_refusal_reads_in_the_users_language_and_keeps_its_english():
    provider = SigningKey.generate()
    doc = agreements.build(OFFER, agreement_id="urn:a:1", target="ds-1", assigner=provider.did, assignee="did:c",
                           timestamp="2026-11-22T10:00:00.000Z")
    forged = {**agreements.sign(SigningKey.generate(), doc), "verificationMethod": provider.did}
    with pytest.raises(ContractError) as caught:
        agreements.verify(doc, forged, signer_keys=(provider.did,))
    assert caught.value.message("en") == ("The contract cannot go ahead: the agreement signature does not verify "
                                          "(forged or altered)")
    assert caught.value.message("zh_CN") == "合约无法继续：协议签名验证失败（被伪造或被篡改）"
    with pytest.raises(ContractError) as caught:
        messages.parse({"@context": messages.CONTEXT, "@type": "ContractAgreementVerificationMessage",
                        "providerPid": "p1"})
    assert caught.value.message("zh_CN").startswith("合约无法继续：消息不符合数据空间协议（DSP）：")


def test_a_termination_carries_its_reason_as_a_code_each_side_renders():
    from appliance.errors import LocalText
    from appliance.services.contracts import terms

    body = messages.termination("c1", "p1", "timeout", LocalText("contract.reason.timed_out", "REQUESTED"))
    assert messages.problems(body) == []
    assert body["reason"] == ["step REQUESTED timed out"]  # what a DSP peer (or an older dsnode) reads
    assert body[messages.REASON] == {"code": "timed_out", "args": ["REQUESTED"]}
    received = messages.reason_of(body)
    assert received.message("en") == "step REQUESTED timed out"
    assert received.message("zh_CN") == "REQUESTED 这一步等待超时"
    assert terms.explain(messages.reason_text(body), body, "zh_CN") == "REQUESTED 这一步等待超时"
    assert terms.explain(messages.reason_text(body), body, "en") == "step REQUESTED timed out"
    # a reason made of words travels in both languages
    class Words:
        def message(self, lang=None):
            return "已于 2026-01-01 到期" if lang == "zh_CN" else "it ended on 2026-01-01"

    body = messages.termination("c1", "p1", "refused", LocalText("contract.reason.offer_expired", Words()))
    assert body["reason"] == ["the offer has expired: it ended on 2026-01-01"]
    assert messages.reason_of(body).message("zh_CN") == "报价已过期：已于 2026-01-01 到期"
    # a person's own words go as they are; a code this node does not know, or junk, is not rendered
    typed = messages.termination("c1", "p1", "rejected", "不在服务区域")
    assert messages.REASON not in typed and messages.reason_of(typed) is None
    for junk in ({"code": "no_such_reason"}, {"code": "../x"}, {"code": "timed_out", "args": [{"x": 1}]},
                 {"code": "timed_out", "args": "REQUESTED"}, "timed_out"):
        assert messages.reason_of({**body, messages.REASON: junk}) is None, junk
    # a refused message's own coded reason is not what the refusal said
    assert terms.explain("unknown negotiation", body, "zh_CN") == "unknown negotiation"
