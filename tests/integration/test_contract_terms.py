"""Member grades, constraint-named terminations, retirement notices and retained demands, between
member nodes of a real space (mosquitto, operator, members)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from appliance.crypto.statement import entry_sha256
from tests.spaces import SPACE, contract_state, finalized, list_entry, peer_of, wait_for

pytestmark = pytest.mark.slow

GRADE = "urn:dsnode:odrl:recipientGrade"
TRIAL = {"@id": "urn:offer:trial", "permission": [{"action": "use"}]}
RESEARCH = {"@id": "urn:offer:research", "permission": [{"action": "use", "constraint": [
    {"leftOperand": "purpose", "operator": "eq", "rightOperand": "https://w3id.org/dpv#AcademicResearch"}]}]}
SHANGHAI = {"@id": "urn:offer:shanghai", "permission": [{"action": "use", "constraint": [
    {"leftOperand": "spatial", "operator": "isPartOf", "rightOperand": "CN-SH"}]}]}
SENIOR = {"@id": "urn:offer:senior", "permission": [{"action": "use", "constraint": [
    {"leftOperand": GRADE, "operator": "gteq", "rightOperand": {"@value": "3", "@type": "xsd:integer"}}]}]}
ENTRY = {"@type": "dcat:Dataset", "dct:title": "注塑机温度数据", "dcat:keyword": ["注塑"],
         "odrl:hasPolicy": [TRIAL, RESEARCH, SHANGHAI, SENIOR]}


@pytest.fixture
def pair(space):
    provider, consumer = space.member("provider"), space.member("consumer")
    list_entry(space, provider, ENTRY, consumer)
    return provider, consumer


def terminated(consumer, cid):
    wait_for(lambda: contract_state(consumer, cid) == "TERMINATED", what="TERMINATED at the consumer")
    return consumer.contracts.explain(cid, "en"), consumer.contracts.explain(cid, "zh_CN")


# --- member grade ----------------------------------------------------------------------------


def test_a_grade_rule_approves_only_the_grade_the_operator_gave(pair, space):
    provider, consumer = pair
    assert consumer.membership.grade(SPACE) == 1  # the space's default grade
    provider.contracts.add_rule({"dataset": "ds-1", "offer": "urn:offer:trial", "min_grade": 3})
    low = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:trial")
    p = peer_of(provider, low)
    wait_for(lambda: provider.contracts.get(p.id).pending, what="grade 1 waits for a person")

    member = [m for m in space.operator.operator.members() if m.did == consumer.identity.did][0]
    assert member.grade == 1
    space.operator.operator.set_grade(consumer.identity.did, 3)
    wait_for(lambda: consumer.membership.grade(SPACE) == 3, what="the re-issued credential")
    assert [m.grade for m in space.operator.operator.members() if m.did == consumer.identity.did] == [3]
    assert "space.credential_updated" in [e.action for e in consumer.evidence.entries()]
    high = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:trial")
    finalized(provider, consumer, high)
    assert provider.contracts.get(p.id).pending  # the first request still waits


def test_a_consumer_cannot_claim_a_grade_its_credential_does_not_carry(pair):
    provider, consumer = pair
    provider.contracts.add_rule({"offer": "urn:offer:trial", "min_grade": 2})
    forged = consumer.sync.space(SPACE).credential
    forged = {**forged, "credentialSubject": {**forged["credentialSubject"], "grade": 5}}
    consumer.store.db.write(lambda c: consumer.sync.update_space(c, SPACE, credential=forged))
    cid = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:trial")
    p = peer_of(provider, cid)
    wait_for(lambda: provider.contracts.get(p.id).pending, what="the request in the queue, not approved")
    assert contract_state(consumer, cid) == "REQUESTED"


def test_the_operator_admits_with_a_grade(reviewed_space):
    space = reviewed_space
    node = space.new_node("graded")
    space.join(node, wait=False)
    request = wait_for(lambda: space.operator.operator.admissions("pending"), what="the join request")[0]
    space.operator.operator.admit(request.id, grade=4)
    space.wait_status(node, "member")
    assert node.membership.grade(SPACE) == 4


# --- TERMINATED names the failed constraint --------------------------------------------------


def test_a_purpose_the_offer_does_not_allow_terminates_naming_it(pair):
    provider, consumer = pair
    cid = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:research",
                                     purpose="https://w3id.org/dpv#Marketing")
    en, zh = terminated(consumer, cid)
    assert 'purpose "marketing"' in en and "dpv:AcademicResearch" in en, "the given and required purposes, named"
    assert "使用目的“营销”" in zh and "学术研究" in zh
    p = peer_of(provider, cid)
    assert contract_state(provider, p.id) == "TERMINATED"
    assert 'purpose "marketing"' in provider.contracts.explain(p.id, "en")
    (last,) = [s for s in consumer.contracts.timeline(cid) if s.state_after == "TERMINATED"]
    assert "purpose eq dpv:AcademicResearch" in last.reason  # the step names it too


def test_a_region_outside_the_offer_terminates_naming_it(pair):
    provider, consumer = pair
    cid = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:shanghai", region="CN-BJ")
    en, zh = terminated(consumer, cid)
    assert 'region "Beijing"' in en and "CN-SH" in en
    assert "使用地区“北京”" in zh and "上海" in zh
    ok = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:shanghai", region="上海")  # a name, typed
    p = peer_of(provider, ok)
    wait_for(lambda: provider.contracts.get(p.id).pending, what="a request in the region waits for a person")


def test_a_purpose_typed_by_its_chinese_name_meets_the_offer(pair):
    provider, consumer = pair
    cid = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:research", purpose="学术研究")
    p = peer_of(provider, cid)
    wait_for(lambda: provider.contracts.get(p.id).pending, what="the request to wait for a person, not be refused")
    assert consumer.contracts.get(cid).state != "TERMINATED"


def test_a_grade_below_the_offer_terminates_naming_it(pair):
    provider, consumer = pair
    cid = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:senior")
    en, zh = terminated(consumer, cid)
    assert "recipient grade" in en and "gteq 3" in en and '"1"' in en
    assert "接收方等级" in zh and "不低于 3" in zh


# --- retirement reaches the consumer ---------------------------------------------------------


def test_a_retired_agreement_is_marked_at_the_consumer_and_the_operator(pair, space):
    provider, consumer = pair
    provider.contracts.add_rule({"offer": "urn:offer:trial"})
    cid = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:trial")
    pid = finalized(provider, consumer, cid)
    filed = wait_for(lambda: space.operator.operator.filings(), what="the filing")
    consumer.sync.stop()  # the consumer is offline when the provider retires
    provider.contracts.retire(pid, "数据源停用")
    assert not provider.contracts.in_force(pid)
    wait_for(lambda: [f for f in space.operator.operator.filings() if f.retired], what="the filing marked retired")
    assert space.operator.operator.filings()[0].retire_reason == "数据源停用"
    assert consumer.contracts.in_force(cid)
    consumer.sync.start()
    wait_for(lambda: not consumer.contracts.in_force(cid), what="the consumer told")
    assert consumer.contracts.agreement(cid)["status"] == "retired"
    retired = [e for e in consumer.evidence.entries() if e.action == "contract.agreement_retired"]
    assert retired and retired[0].payload["by"] == provider.identity.did
    assert [s.reason for s in consumer.contracts.timeline(cid) if s.event == "AgreementRetired"] == ["数据源停用"]
    assert filed[0].agreement_sha256 == entry_sha256(filed[0].agreement)


def test_a_retirement_not_from_the_provider_is_refused(pair, space):
    provider, consumer = pair
    intruder = space.member("intruder")
    provider.contracts.add_rule({"offer": "urn:offer:trial"})
    cid = consumer.contracts.request(SPACE, "ds-1", offer_id="urn:offer:trial")
    finalized(provider, consumer, cid)
    saved = consumer.contracts.agreement(cid)
    doc = saved["agreement"]
    from appliance.services.contracts import agreement as agreements
    from appliance.services.contracts import retirement

    statement = {"@type": retirement.STATEMENT, "agreement": doc["@id"], "assigner": doc["assigner"],
                 "assignee": doc["assignee"], "reason": "forged", "retiredAt": "2026-01-01T00:00:00Z"}
    body = {"consumerPid": cid, "providerPid": doc["@id"], "statement": statement,
            "signature": agreements.sign(intruder.keyring.signing_key(), statement)}
    intruder.store.db.write(lambda c: intruder.sync.send(c, SPACE, to=consumer.identity.did, type=retirement.NOTICE,
                                                         body=body))
    wait_for(lambda: any("provider" in s.reason for s in consumer.contracts.timeline(cid)
                         if s.event.startswith("refused")), what="the forgery refused")
    assert consumer.contracts.in_force(cid)


# --- demands are retained state --------------------------------------------------------------


def test_a_member_joining_later_sees_open_demands_and_their_withdrawal(pair, space):
    provider, consumer = pair
    kept = consumer.demands.publish(SPACE, "注塑 温度数据", purpose="质量分析", keywords=["注塑"])
    short = consumer.demands.publish(SPACE, "注塑 压力数据", keywords=["注塑"], ttl=timedelta(seconds=3))
    wait_for(lambda: len(space.operator.operator.demands()) == 2, what="the operator publishes them")
    late = space.member("late")  # joins after the demands were published
    listed_late = wait_for(lambda: late.demands.list(SPACE), what="the open demands at the late member")
    assert {d.id for d in listed_late} <= {kept, short}
    wait_for(lambda: {d.id for d in late.demands.list(SPACE, status=None)} == {kept, short}, what="both demands")
    time.sleep(3)
    wait_for(lambda: [d.status for d in late.demands.list(SPACE, status=None) if d.id == short] == ["expired"],
             what="the expired demand cleared")
    assert [d.status for d in space.operator.operator.demands(None) if d.id == short] == ["expired"]
    consumer.demands.withdraw(kept)
    wait_for(lambda: not late.demands.list(SPACE), what="the withdrawal at the late member")
    wait_for(lambda: not provider.demands.list(SPACE), what="the withdrawal at the provider")
    assert [d.status for d in late.demands.list(SPACE, status=None) if d.id == kept] == ["withdrawn"]
