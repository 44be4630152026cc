"""A whole data space on a real mosquitto configured by `operator broker-config`: joining, review,
revocation, listing review, contract filing and the operator witnessing members' evidence logs."""

from __future__ import annotations

import pytest

from appliance.services.membership.statements import check_credential
from appliance.operator.witness import AlertRaised
from appliance.services.evidence import append_entry
from appliance.domain.membership import JoinPending, JoinRejected, ListingDecided
from tests.spaces import SPACE, wait_for

pytestmark = pytest.mark.slow

ENTRY = {"@type": "dcat:Dataset", "dct:title": "注塑机温度数据", "dcat:keyword": ["注塑", "温度"],
         "odrl:hasPolicy": [{"@type": "odrl:Offer", "permission": [{"action": "use"}]}]}


def _events(node, kind):
    seen = []
    node.bus.subscribe(seen.append, kind)
    return seen


def _listed(space, provider, reader, dataset="ds-1", entry=ENTRY):
    provider.membership.request_listing(SPACE, dataset, entry, pricing={"price": "100", "unit": "CNY/月"},
                                        compliance="数据来源合法，已脱敏")
    request = wait_for(lambda: space.operator.operator.listings("pending"), what="the listing request")[0]
    space.operator.operator.approve_listing(request.id)
    wait_for(lambda: [e for e in reader.sync.catalog(SPACE) if e.dataset_id == dataset], what="the entry to sync")
    return request


def test_a_node_joins_with_an_invitation_and_becomes_a_member(space):
    node = space.member("a")
    config = node.sync.space(SPACE)
    subject = check_credential(config.credential, operator_did=space.operator.identity.did, space_id=SPACE,
                               node_did=node.identity.did)
    assert subject["name"] == "a" and config.username == node.identity.did
    assert [m.did for m in space.operator.operator.members()] == [node.identity.did]
    assert [e.action for e in node.evidence.entries(action="space.joined")]
    assert [a.status for a in space.operator.operator.admissions()] == ["admitted"]


def test_an_invitation_works_only_once(space):
    a, b = space.new_node("a"), space.new_node("b")
    code = space.join(a)
    rejected = _events(b, JoinRejected)
    space.join(b, code, wait=False)
    wait_for(lambda: rejected, what="the rejection")
    assert "already used" in rejected[0].reason
    space.wait_status(b, "left")
    assert [m.did for m in space.operator.operator.members()] == [a.identity.did]


def test_manual_review_admits_after_approval(reviewed_space):
    space = reviewed_space
    node = space.new_node("a")
    pending = _events(node, JoinPending)
    space.join(node, wait=False)
    wait_for(lambda: pending, what="the pending notice")
    (request,) = space.operator.operator.admissions("pending")
    assert request.node_did == node.identity.did and space.status(node) == "joining"
    space.operator.operator.admit(request.id)
    space.wait_status(node, "member")


def test_a_rejected_node_is_told_why(reviewed_space):
    space = reviewed_space
    node = space.new_node("a")
    rejected = _events(node, JoinRejected)
    space.join(node, wait=False)
    request = wait_for(lambda: space.operator.operator.admissions("pending"), what="the request")[0]
    space.operator.operator.reject(request.id, "未签署入驻协议")
    wait_for(lambda: rejected, what="the rejection")
    assert rejected[0].reason == "未签署入驻协议"
    space.wait_status(node, "left")
    assert not space.operator.operator.members()


def test_an_approved_listing_reaches_other_members_and_a_rejected_one_does_not(space):
    a, b = space.member("a"), space.member("b")
    decided = _events(a, ListingDecided)
    _listed(space, a, b)
    (entry,) = b.sync.catalog(SPACE, "注塑")
    assert entry.provider == a.identity.did and entry.entry["entry"] == ENTRY
    a.membership.request_listing(SPACE, "ds-2", {**ENTRY, "dct:title": "未脱敏的原始数据"}, compliance="")
    request = wait_for(lambda: space.operator.operator.listings("pending"), what="the second request")[0]
    space.operator.operator.reject_listing(request.id, "缺少合规说明")
    wait_for(lambda: len(decided) == 2, what="both decisions")
    assert decided[1].approved is False and decided[1].reason == "缺少合规说明"
    wait_for(lambda: [(x.dataset_id, x.status) for x in a.membership.listings(SPACE)]
             == [("ds-1", "approved"), ("ds-2", "rejected")], what="the decisions on record")
    space.settle(a, b)
    assert [e.dataset_id for e in b.sync.catalog(SPACE)] == ["ds-1"]


def test_an_entry_without_a_valid_approval_is_not_shown(space):
    a, b = space.member("a"), space.member("b")
    a.store.db.write(lambda c: a.sync.publish(c, SPACE, topic=f"catalog/{a.identity.did}/sneaky",
                                              type="dsnode.catalog.entry", retained=True,
                                              body={"dataset_id": "sneaky", "entry": ENTRY, "approval": None}))
    _listed(space, a, b)  # a real one arrives after it, so the sneaky one had time to arrive too
    assert [e.dataset_id for e in b.sync.catalog(SPACE)] == ["ds-1"]


def test_a_revoked_member_is_ignored_hidden_and_cut_off(space):
    a, b = space.member("a"), space.member("b")
    _listed(space, a, b)
    space.operator.operator.revoke(a.identity.did, "违反数据使用协议")
    space.wait_status(a, "revoked")
    wait_for(lambda: not b.sync.catalog(SPACE), what="a's listing to disappear at b")
    wait_for(lambda: b.membership.revocations.is_revoked(SPACE, a.identity.did), what="b to learn of it")
    # a cannot connect any more, and what it queued never takes effect at b
    wait_for(lambda: not a.sync.status(SPACE)[0].connected, what="a to be disconnected")
    assert [e.action for e in a.evidence.entries(action="space.revoked")]
    assert space.operator.operator.members()[0].status == "revoked"


def test_the_operator_witnesses_an_honest_log_and_alerts_on_a_rewritten_one(space):
    a = space.member("a")
    wait_for(lambda: a.membership.witnessed_notes(), what="the first witnessed checkpoint")
    for i in range(5):
        a.evidence.record("test.step", f"urn:x:{i}", {"i": i})
    a.membership.publish_checkpoint()
    size = a.evidence.size()
    wait_for(lambda: space.operator.operator.witnessed()[a.identity.did][0] == size, what="the consistency check")
    wait_for(lambda: len(a.membership.witnessed_notes()) >= 2, what="the co-signed checkpoint back at the node")
    assert a.verify_evidence().ok
    assert not space.operator.operator.alerts()

    alerts = _events(space.operator, AlertRaised)
    entries = list(a.evidence.entries())

    def rewrite(conn):
        for trigger in ("evidence_entry_append_only_update", "evidence_entry_append_only_delete"):
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        conn.execute("DELETE FROM evidence_checkpoint")
        conn.execute("DELETE FROM evidence_entry")
        for e in entries:
            action = "test.forged" if e.index == 3 else e.action
            append_entry(conn, ts=e.ts, actor=e.actor, action=action, subject=e.subject, payload=e.payload)
        append_entry(conn, ts=entries[-1].ts, actor=entries[-1].actor, action="test.more", subject="urn:y",
                     payload=None)

    a.store.db.write(rewrite)
    a.membership.publish_checkpoint()
    wait_for(lambda: alerts, what="the alert event")
    (alert,) = wait_for(lambda: space.operator.operator.alerts(), what="the alert on record")
    assert alert.node_did == a.identity.did and alert.kind == "rewritten"
    assert [e for e in space.operator.evidence.entries(action="operator.alert_raised")]
    report = a.verify_evidence()  # the witnessed checkpoints no longer match the rewritten log
    assert not report.ok and any("rewritten" in p for p in report.problems)


def test_an_agreement_is_filed_and_receipted(space):
    a = space.member("a")
    agreement = {"id": "urn:agreement:1", "provider": a.identity.did, "consumer": "did:key:z6Mk…", "价格": "100"}
    a.store.db.write(lambda c: a.membership.file_agreement(c, SPACE, agreement))
    from appliance.crypto.statement import entry_sha256

    digest = entry_sha256(agreement)
    receipt = wait_for(lambda: a.membership.filing_receipt(SPACE, digest), what="the receipt")
    assert receipt["filed_by"] == a.identity.did
    (filed,) = space.operator.operator.filings()
    assert filed.agreement == agreement and filed.agreement_sha256 == digest


def test_what_members_send_while_the_operator_is_offline_arrives_later(space):
    a, b = space.member("a"), space.member("b")
    space.operator.stop()
    a.membership.request_listing(SPACE, "ds-offline", ENTRY)
    agreement = {"id": "urn:agreement:offline"}
    a.store.db.write(lambda c: a.membership.file_agreement(c, SPACE, agreement))
    space.settle(a)
    assert a.sync.status(SPACE)[0].queued == 0  # the broker holds them for the operator
    assert not space.operator.operator.listings()
    space.operator.start()
    request = wait_for(lambda: space.operator.operator.listings("pending"), what="the queued request")[0]
    assert request.dataset_id == "ds-offline"
    wait_for(lambda: space.operator.operator.filings(), what="the queued filing")
    space.operator.operator.approve_listing(request.id)
    wait_for(lambda: b.sync.catalog(SPACE), what="the entry at b")
    assert len(space.operator.operator.listings()) == 1 and len(space.operator.operator.filings()) == 1


def test_password_file_mode_admits_and_revokes_by_rewriting_the_files(tmp_path):
    from tests.spaces import SpaceHarness

    space = SpaceHarness(tmp_path / "pw", mode="password-file")
    try:
        a = space.member("a")
        assert a.sync.space(SPACE).username == a.identity.did.removeprefix("did:key:")
        b = space.member("b")
        _listed(space, a, b)
        space.operator.operator.revoke(a.identity.did, "测试撤销")
        wait_for(lambda: not b.sync.catalog(SPACE), what="a's listing to disappear")
        space.wait_status(a, "revoked")
        passwd = (tmp_path / "pw" / "broker" / "passwd").read_text()
        wait_for(lambda: a.identity.did.removeprefix("did:key:") not in
                 (tmp_path / "pw" / "broker" / "passwd").read_text(), what="a's password line to go")
        assert b.identity.did.removeprefix("did:key:") in passwd
    finally:
        space.close()


def test_a_member_that_leaves_takes_its_listings_with_it(space):
    a, b = space.member("a"), space.member("b")
    _listed(space, a, b)
    a.membership.leave(SPACE)
    wait_for(lambda: not b.sync.catalog(SPACE), what="the entry to be cleared at b")
    wait_for(lambda: space.operator.operator.members()[0].status == "left", what="the operator to see it")
    assert space.status(a) == "left"
