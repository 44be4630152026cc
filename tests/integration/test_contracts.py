"""Contract negotiation between two member nodes of a real space (mosquitto, operator, members)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from appliance.crypto.statement import entry_sha256
from appliance.services.contracts import messages
from tests.spaces import SPACE, contract_state, finalized, list_entry, peer_of, wait_for

pytestmark = pytest.mark.slow

TRIAL = {"@id": "urn:offer:trial", "@type": "odrl:Offer", "permission": [{"action": "use"}]}
PAID = {"@id": "urn:offer:paid", "@type": "odrl:Offer", "permission": [{"action": "use"}],
        "obligation": [{"action": "compensate"}]}
ENTRY = {"@type": "dcat:Dataset", "dct:title": "注塑机温度数据", "dcat:keyword": ["注塑"],
         "odrl:hasPolicy": [TRIAL, PAID]}


@pytest.fixture
def pair(space):
    provider, consumer = space.member("provider"), space.member("consumer")
    list_entry(space, provider, ENTRY, consumer)
    return provider, consumer


def all_valid(node):
    for n in node.contracts.list():
        for s in node.contracts.timeline(n.id):
            if s.message is not None:
                assert messages.problems(s.message) == [], (s.event, s.message)


def evidence_actions(node, subject):
    return [e.action for e in node.evidence.entries() if e.subject == subject]


def test_consumer_request_approved_by_rule_ends_finalized_signed_and_filed(pair, space):
    provider, consumer = pair
    provider.contracts.add_rule({"dataset": "ds-1", "offer": "urn:offer:trial"})
    cid = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:trial")
    pid = finalized(provider, consumer, cid)
    signed = consumer.contracts.agreement(cid)
    assert signed == {**provider.contracts.agreement(pid)}
    doc = signed["agreement"]
    assert doc["assigner"] == provider.identity.did and doc["assignee"] == consumer.identity.did
    assert doc["permission"] == [{"action": "use"}] and doc["target"] == "ds-1"
    assert signed["status"] == "active" and consumer.contracts.in_force(cid)
    filed = {"agreement": doc, "provider_signature": signed["provider_signature"],
             "consumer_signature": signed["consumer_signature"]}
    wait_for(lambda: provider.membership.filing_receipt(SPACE, entry_sha256(filed)), what="the operator's receipt")
    assert [s.state_after for s in consumer.contracts.timeline(cid)] == ["REQUESTED", "AGREED", "VERIFIED",
                                                                         "FINALIZED"]
    assert [s.state_after for s in provider.contracts.timeline(pid)] == ["REQUESTED", "AGREED", "VERIFIED",
                                                                         "FINALIZED"]
    all_valid(provider)
    all_valid(consumer)
    for node, nid in ((consumer, cid), (provider, pid)):
        assert evidence_actions(node, nid) == ["contract.requested", "contract.agreed", "contract.verified",
                                               "contract.finalized"]
    provider.contracts.retire(pid, "合同到期")
    assert not provider.contracts.in_force(pid)


def test_without_a_rule_a_person_approves_or_rejects_with_a_reason(pair):
    provider, consumer = pair
    cid = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:paid")
    pending = wait_for(lambda: provider.contracts.pending(), what="the request in the approval queue")
    assert contract_state(consumer, cid) == "REQUESTED"
    provider.contracts.approve(pending[0].id)
    finalized(provider, consumer, cid)

    second = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:paid")
    pending = wait_for(lambda: provider.contracts.pending(), what="the second request")
    provider.contracts.reject(pending[0].id, "贵司不在服务区域内")
    wait_for(lambda: contract_state(consumer, second) == "TERMINATED", what="the rejection")
    assert consumer.contracts.get(second).reason == "贵司不在服务区域内"
    assert consumer.contracts.timeline(second)[-1].reason == "贵司不在服务区域内"
    all_valid(consumer)


def test_counter_offers_both_ways_in_a_provider_initiated_negotiation(pair):
    provider, consumer = pair
    pid = provider.contracts.offer_to(SPACE, consumer.identity.did, "ds-1", PAID)
    cid = wait_for(lambda: [n for n in consumer.contracts.pending() if n.peer_pid == pid],
                   what="the offer at the consumer")[0].id
    consumer.contracts.counter(cid, TRIAL)  # consumer counter-request
    wait_for(lambda: provider.contracts.get(pid).pending and contract_state(provider, pid) == "REQUESTED",
             what="the counter-request")
    cheaper = {**PAID, "@id": "urn:offer:paid-2", "obligation": [{"action": "compensate",
               "constraint": [{"leftOperand": "payAmount", "operator": "eq", "rightOperand": "50"}]}]}
    provider.contracts.counter(pid, cheaper)  # provider counter-offer
    wait_for(lambda: consumer.contracts.get(cid).pending and contract_state(consumer, cid) == "OFFERED",
             what="the counter-offer")
    consumer.contracts.approve(cid)  # ACCEPTED -> the provider agrees to its own offer
    finalized(provider, consumer, cid)
    assert consumer.contracts.agreement(cid)["agreement"]["obligation"] == cheaper["obligation"]
    assert [s.state_after for s in consumer.contracts.timeline(cid)] == [
        "OFFERED", "REQUESTED", "OFFERED", "ACCEPTED", "AGREED", "VERIFIED", "FINALIZED"]
    all_valid(provider)
    all_valid(consumer)


def test_either_side_terminates_with_a_reason(pair):
    provider, consumer = pair
    cid = consumer.contracts.request(SPACE, "ds-1", offer_id=TRIAL["@id"])
    p = peer_of(provider, cid)
    wait_for(lambda: provider.contracts.get(p.id).state == "REQUESTED", what="the request")
    consumer.contracts.terminate(cid, "不再需要")
    wait_for(lambda: contract_state(provider, p.id) == "TERMINATED", what="the provider to see the termination")
    assert provider.contracts.get(p.id).reason == "不再需要"
    assert evidence_actions(provider, p.id)[-1] == "contract.terminated"


def test_a_stale_negotiation_times_out_with_the_step_named(pair):
    provider, consumer = pair
    cid = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:paid")
    p = peer_of(provider, cid)
    wait_for(lambda: provider.contracts.get(p.id).pending, what="the request in the queue")
    later = provider.clock.now() + timedelta(days=8)
    assert provider.contracts.expire_stale(later) == [p.id]
    assert provider.contracts.get(p.id).reason == "step REQUESTED timed out"
    wait_for(lambda: contract_state(consumer, cid) == "TERMINATED", what="the consumer to hear of the timeout")
    assert consumer.contracts.get(cid).reason == "step REQUESTED timed out"
    # the reason travels as a code: each side reads it in its own user's language
    assert consumer.contracts.explain(cid, "zh_CN") == "REQUESTED 这一步等待超时"
    assert provider.contracts.explain(p.id, "zh_CN") == "REQUESTED 这一步等待超时"
    assert consumer.contracts.explain(cid, "en") == "step REQUESTED timed out"


def test_a_negotiation_started_while_the_provider_is_offline_completes_later(pair):
    provider, consumer = pair
    provider.contracts.add_rule({"offer": "urn:offer:trial"})
    provider.stop()
    cid = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:trial")
    assert contract_state(consumer, cid) == "REQUESTED"
    provider.start()
    finalized(provider, consumer, cid)


def _send_raw(node, to, body):
    node.store.db.write(lambda c: node.sync.send(c, SPACE, to=to, type=messages.wire_type(body), body=body))


def test_forged_altered_unknown_and_out_of_order_messages_change_nothing(pair):
    provider, consumer = pair
    cid = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:paid")
    p = peer_of(provider, cid)
    wait_for(lambda: provider.contracts.get(p.id).pending, what="the request in the queue")
    pdid, cdid = provider.identity.did, consumer.identity.did

    # out of order: a verification before any agreement
    _send_raw(consumer, pdid, messages.verification(cid, p.id, {"verificationMethod": cdid, "signature": "AA=="}))
    wait_for(lambda: any(s.event.startswith("refused") for s in provider.contracts.timeline(p.id)), what="refusal")
    assert contract_state(provider, p.id) == "REQUESTED"

    # duplicate start of the same negotiation
    offer = consumer.contracts.get(cid).offer
    _send_raw(consumer, pdid, messages.request(cid, None, offer, callback="x"))
    wait_for(lambda: sum(s.event.startswith("refused") for s in provider.contracts.timeline(p.id)) == 2,
             what="the duplicate refused")

    # unknown negotiation: refused and answered with a termination; nothing created
    before = len(provider.contracts.list())
    _send_raw(consumer, pdid, messages.event("urn:uuid:nope", "urn:uuid:nope-p", "ACCEPTED"))
    wait_for(lambda: "contract.message_rejected" in [e.action for e in provider.evidence.entries()
                                                      if e.subject.startswith("unknown:")], what="unknown refused")
    assert len(provider.contracts.list()) == before

    # the provider agrees; then a forged countersignature and an agreement with altered terms are refused
    provider.contracts.approve(p.id)
    finalized(provider, consumer, cid)  # the honest run
    third = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:paid")
    p3 = peer_of(provider, third)
    wait_for(lambda: provider.contracts.get(p3.id).pending, what="the third request")
    from appliance.crypto.keys import SigningKey
    from appliance.services.contracts import agreement as agreements

    altered = agreements.build({"permission": [{"action": "use"}]}, agreement_id="urn:a:x", target="ds-1",
                               assigner=pdid, assignee=cdid, timestamp="2026-11-22T10:00:00Z")
    _send_raw(provider, cdid, messages.agreement(third, p3.id, altered,
                                                 agreements.sign(provider.keyring.signing_key(), altered)))
    wait_for(lambda: any("differ" in s.reason for s in consumer.contracts.timeline(third)), what="altered refused")
    assert contract_state(consumer, third) == "REQUESTED" and consumer.contracts.agreement(third) is None

    forged = agreements.sign(SigningKey.generate(), altered)
    forged["verificationMethod"] = cdid
    # a forged countersignature needs an agreement at the provider: agree first, then forge at VERIFY
    provider.contracts.approve(p3.id)
    wait_for(lambda: contract_state(consumer, third) == "FINALIZED", what="the honest third")
    fourth = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:paid")
    p4 = peer_of(provider, fourth)
    wait_for(lambda: provider.contracts.get(p4.id).pending, what="the fourth request")
    consumer.contracts.sync.stop()  # keep the consumer's honest verification from racing the forgery
    provider.contracts.approve(p4.id)
    _send_raw(consumer, pdid, messages.verification(fourth, p4.id, forged))
    consumer.sync.start()
    wait_for(lambda: any("signature" in s.reason for s in provider.contracts.timeline(p4.id)), what="forgery refused")
    wait_for(lambda: contract_state(provider, p4.id) == "FINALIZED", what="the honest verification still finalizes")
    all_valid(provider)
    all_valid(consumer)


def test_a_demand_reaches_providers_matches_their_listing_and_an_answer_negotiates(pair):
    provider, consumer = pair
    wait_for(lambda: [p for p in consumer.sync.peers(SPACE) if p.did == provider.identity.did], what="peer known")
    did = consumer.demands.publish(SPACE, "注塑 温度数据", purpose="质量分析", period="2026Q1", budget="5000 CNY",
                                   contact="仅站内消息", keywords=["注塑"])
    wait_for(lambda: provider.demands.list(SPACE), what="the demand at the provider")
    (match,) = provider.demands.matches(SPACE)
    assert match.demand_id == did and match.dataset_id == "ds-1" and "注塑" in match.shared
    pid = provider.demands.answer(did, "ds-1", TRIAL)
    cid = wait_for(lambda: [n for n in consumer.contracts.pending() if n.peer_pid == pid], what="the offer")[0].id
    consumer.contracts.approve(cid)
    finalized(provider, consumer, cid)
    consumer.demands.withdraw(did)
    wait_for(lambda: not provider.demands.list(SPACE), what="the withdrawal")
    assert [d.status for d in provider.demands.list(SPACE, status=None)] == ["withdrawn"]


def test_an_expired_offer_is_refused_with_the_reason(pair):
    provider, consumer = pair
    expired = {"@id": "urn:offer:old", "permission": [{"action": "use", "constraint": [
        {"leftOperand": "dateTime", "operator": "lteq", "rightOperand": {"@value": "2020-01-01T00:00:00Z",
                                                                         "@type": "xsd:dateTime"}}]}]}
    cid = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:paid")
    p = peer_of(provider, cid)
    wait_for(lambda: provider.contracts.get(p.id).pending, what="the request in the queue")
    provider.contracts.counter(p.id, expired)  # a provider offering already-expired terms
    wait_for(lambda: any("expired" in s.reason for s in consumer.contracts.timeline(cid)), what="refused")
    assert contract_state(consumer, cid) == "REQUESTED"
    before = len(provider.contracts.list())
    _send_raw(consumer, provider.identity.did, messages.request("urn:uuid:new", None,
                                                                {**expired, "@type": "Offer", "target": "ds-1"}, "x"))
    wait_for(lambda: any("expired" in str(e.payload) for e in provider.evidence.entries()
                         if e.action == "contract.message_rejected"), what="the expired request refused")
    assert len(provider.contracts.list()) == before


def test_a_termination_before_the_first_answer_names_the_pid_the_provider_gave(pair):
    """DSP messages after the first name both negotiations: a consumer that ends its request before
    the provider answered knows the provider's pid anyway (derived from both nodes and its own pid)."""
    provider, consumer = pair
    cid = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:paid")
    p = peer_of(provider, cid)
    wait_for(lambda: provider.contracts.get(p.id).pending, what="the request in the approval queue")
    assert consumer.contracts.get(cid).peer_pid is None
    consumer.contracts.terminate(cid, "不需要了")
    wait_for(lambda: contract_state(provider, p.id) == "TERMINATED", what="the provider told of the end")
    assert provider.contracts.get(p.id).reason == "不需要了"
    sent = consumer.contracts.timeline(cid)[-1].message
    assert (sent["consumerPid"], sent["providerPid"]) == (cid, p.id)
    all_valid(provider)
    all_valid(consumer)
