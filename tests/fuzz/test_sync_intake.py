"""Whatever arrives on a space, the intake (checks, then every real handler of a member node, in one
transaction) ends each message as applied or dropped with a reason, and never meets a bug: a
quarantined message here is a defect found. Three kinds of input: random bytes on any topic,
byte-level damage to a genuine signed message, and messages correctly signed by a peer or by the
space operator whose body is any JSON value, of every type some handler takes, sealed or not."""

from __future__ import annotations

import itertools
import secrets
import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.clock import FixedClock, rfc3339
from appliance.crypto.keys import SigningKey
from appliance.domain.sync import DropReason, SpaceConfig, absolute
from appliance.node import Node
from appliance.services.sync.codec import seal, sign_and_encode
from appliance.services.sync.intake import Arrival, Intake
from appliance.storage import KdfParams
from tests.fuzzing import fuzz, scaled

SPACE = "fuzz-space"
OPERATOR = SigningKey.generate()
PEER = SigningKey.generate()
SEQS = itertools.count(1)  # retained state only replaces older state: each message newer than the last
BUGS = {str(DropReason.QUARANTINED), str(DropReason.HANDLER_FAILED)}
FIELDS = ["@type", "@id", "@context", "type", "id", "did", "name", "org", "keys", "credential", "state", "reason",
          "stream", "missing", "through", "entry", "offer", "agreement", "dataset", "consumerPid", "providerPid",
          "callbackAddress", "odrl:permission", "permission", "constraint", "leftOperand", "operator",
          "rightOperand", "target", "assigner", "assignee", "timestamp", "signature", "proof", "issuer",
          "credentialSubject", "validFrom", "validUntil", "revoked", "list", "note", "checkpoint", "size", "root",
          "proof_hashes", "old_size", "grade", "body", "seq", "listing", "template", "demand", "code", "sealed"]


@pytest.fixture(scope="module")
def member(tmp_path_factory):
    clock = FixedClock()
    node = Node.init(tmp_path_factory.mktemp("member") / "node", b"fuzz passphrase", name="fuzz", kdf=KdfParams.fast(),
                     clock=clock)
    config = SpaceConfig(space_id=SPACE, name="Fuzz", operator_did=OPERATOR.did, broker_host="127.0.0.1",
                         broker_port=1, tls_ca_pem=None, username=node.identity.did, password="x", status="member",
                         credential=None)
    node.store.db.write(lambda c: node.sync.add_space(c, config))
    yield node, Intake(node.sync, config), clock
    node.close()


def _take(member, topic: str, payload: bytes, retained: bool) -> list[str]:
    node, intake, clock = member
    taken = intake.take([Arrival(absolute(SPACE, topic), payload, retained, clock.now())])
    assert not [d for d in taken.drops if d[0] in BUGS], f"a bug met on {topic}: {taken.drops}"
    return [d[0] for d in taken.drops]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=40)
    | st.sampled_from(["did:key:z6Mk", PEER.did, OPERATOR.did, "2026-01-01T00:00:00Z", SPACE, "", "0"]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8),
                                                              inner, max_size=6),
    max_leaves=30,
)


def _topics(node_did: str) -> list[str]:
    return [f"inbox/{node_did}", f"node/{PEER.did}/card", f"node/{PEER.did}/status", f"catalog/{PEER.did}/ds-1",
            f"evidence/{PEER.did}", "operator/revocations", "operator/templates/t1", "operator/demands/d1",
            f"node/{OPERATOR.did}/card"]


@fuzz
@given(data=st.data())
def test_signed_messages_with_any_body_reach_every_handler_without_a_bug(member, data):
    node, _intake, clock = member
    me = node.identity.did
    topic = data.draw(st.sampled_from(_topics(me)), label="topic")
    signer = OPERATOR if topic.startswith("operator/") or data.draw(st.booleans()) else PEER
    if topic.startswith("node/") or topic.startswith("catalog/") or topic.startswith("evidence/"):
        signer = PEER if PEER.did in topic else OPERATOR
    msg_type = data.draw(st.sampled_from(node.sync.handled_types() + ["dsnode.sync.card", "test.other"]), label="type")
    body = data.draw(json_values, label="body")
    to = me if topic.startswith("inbox/") else None
    msg_id = secrets.token_hex(16)
    if to is not None and data.draw(st.booleans(), label="sealed"):
        body = seal(body, to=me, from_did=signer.did, msg_id=msg_id, space=SPACE, type=msg_type)
    try:
        payload = sign_and_encode(signer, from_did=signer.did, type=msg_type, space=SPACE, to=to,
                                  seq=next(SEQS) if to is None else data.draw(st.integers(0, 2**53 - 1), label="seq"),
                                  ts=rfc3339(clock.now()),
                                  body=body, msg_id=msg_id)
    except ValueError:  # a body canonical JSON cannot carry (the sender's side refuses it)
        return
    _take(member, topic, payload, retained=to is None)


@fuzz
@given(topic=st.text(max_size=60) | st.sampled_from(["inbox/x", "catalog/a/b", "operator/revocations"]),
       payload=st.binary(max_size=600), retained=st.booleans())
def test_random_bytes_on_any_topic_are_dropped(member, topic, payload, retained):
    _take(member, topic, payload, retained)


@scaled(1000)
@given(data=st.data())
def test_damaged_genuine_messages_are_dropped_without_a_bug(member, data):
    node, _intake, clock = member
    me = node.identity.did
    genuine = bytearray(sign_and_encode(PEER, from_did=PEER.did, type="dsnode.sync.card", space=SPACE, to=me, seq=3,
                                        ts=rfc3339(clock.now()), body={"n": 1, "s": "车间"},
                                        msg_id=secrets.token_hex(16)))
    for _ in range(data.draw(st.integers(1, 6), label="edits")):
        at = data.draw(st.integers(0, len(genuine) - 1), label="at")
        how = data.draw(st.sampled_from(["flip", "cut", "insert"]), label="how")
        if how == "flip":
            genuine[at] = data.draw(st.integers(0, 255))
        elif how == "cut":
            del genuine[at:at + data.draw(st.integers(1, 40))]
            if not genuine:
                break
        else:
            genuine[at:at] = data.draw(st.sampled_from([b"[" * 3000, b"9" * 5000, b"\\ud800", b"1e999", b"-0",
                                                        b'"\\u0000"', b"\xff", b"{}", b"null"]))
    _take(member, f"inbox/{me}", bytes(genuine), False)


def test_after_all_that_a_good_message_is_still_applied(member):
    node, intake, clock = member
    applied = []
    node.sync.on("fuzz.final", lambda conn, msg: applied.append(msg.body))
    payload = sign_and_encode(PEER, from_did=PEER.did, type="fuzz.final", space=SPACE, to=node.identity.did, seq=0,
                              ts=rfc3339(clock.now()), body={"ok": True}, msg_id=secrets.token_hex(16))
    taken = intake.take([Arrival(absolute(SPACE, f"inbox/{node.identity.did}"), payload, False, clock.now())])
    assert (taken.applied, applied) == (1, [{"ok": True}])


def _genuine_bodies(me: str) -> list[tuple[str, str, SigningKey, object]]:
    """(topic, type, signer, body) of well-formed messages of the kinds a peer and the operator send
    this member: a changed field inside them reaches a handler's deeper checks, past the shape
    checks a random body stops at."""
    from appliance.services.membership import statements as membership
    from appliance.services.contracts import agreement, messages

    offer = {"@id": "urn:uuid:offer-1", "@type": "Offer", "target": "urn:uuid:ds-1", "assigner": PEER.did,
             "permission": [{"action": "use", "constraint": [
                 {"leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": "P30D"},
                 {"leftOperand": "purpose", "operator": "eq", "rightOperand": "https://w3id.org/dpv#AcademicResearch"},
                 {"leftOperand": "count", "operator": "lteq", "rightOperand": {"@value": "5", "@type": "xsd:integer"}}],
                 "duty": [{"action": "delete", "constraint": [
                     {"leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": "P60D"}]}]}]}
    deal = agreement.build(offer, agreement_id="urn:uuid:agreement-1", target="urn:uuid:ds-1", assigner=PEER.did,
                           assignee=me, timestamp="2026-11-22T10:00:00Z")
    credential = membership.issue_credential(
        OPERATOR, operator_did=OPERATOR.did, space_id=SPACE, space_name="Fuzz", node_did=me, name="fuzz",
        org="示例制造", member_since="2026-01-01T00:00:00.000Z", valid_until="2099-01-01T00:00:00.000Z",
        credential_id="urn:uuid:credential-1", grade=2)
    inbox = f"inbox/{me}"
    contract = "dsnode.contract."
    return [
        (inbox, contract + "ContractRequestMessage", PEER,
         messages.request("urn:uuid:c-1", None, offer, f"inbox/{PEER.did}")),
        (inbox, contract + "ContractOfferMessage", PEER,
         messages.offer("urn:uuid:p-1", "urn:uuid:c-1", offer, f"inbox/{PEER.did}")),
        (inbox, contract + "ContractAgreementMessage", PEER,
         messages.agreement("urn:uuid:c-1", "urn:uuid:p-1", deal, agreement.sign(PEER, deal))),
        (inbox, contract + "ContractAgreementVerificationMessage", PEER,
         messages.verification("urn:uuid:c-1", "urn:uuid:p-1", agreement.sign(PEER, deal))),
        (inbox, contract + "ContractNegotiationEventMessage", PEER,
         messages.event("urn:uuid:c-1", "urn:uuid:p-1", "FINALIZED")),
        (inbox, contract + "ContractNegotiationTerminationMessage", PEER,
         messages.termination("urn:uuid:c-1", "urn:uuid:p-1", "rejected", "不需要了")),
        (inbox, "dsnode.membership.credential", OPERATOR, {"credential": credential}),
        (inbox, "dsnode.membership.admitted", OPERATOR,
         {"credential": credential, "username": me, "password": "secret"}),
        (inbox, "dsnode.listing.approved", OPERATOR, {"dataset": "ds-1", "approval": membership.listing_approval(
            OPERATOR, space_id=SPACE, operator_did=OPERATOR.did, provider=me, dataset_id="ds-1", entry={"a": 1},
            approved_at="2026-05-01T00:00:00.000Z")}),
        ("operator/revocations", "dsnode.sync.card", OPERATOR, membership.revocation_list(
            OPERATOR, space_id=SPACE, operator_did=OPERATOR.did, seq=1, ts="2026-05-01T00:00:00.000Z",
            revoked=[{"did": PEER.did, "reason": "left", "at": "2026-05-01T00:00:00.000Z"}])),
        (f"node/{PEER.did}/card", "dsnode.sync.card", PEER,
         {"did": PEER.did, "name": "peer", "org": "示例", "keys": [], "credential": credential}),
    ]


@scaled(1200)
@given(data=st.data())
def test_genuine_messages_with_one_field_changed_reach_handlers_without_a_bug(member, data):
    from tests.fuzz.values import mutations

    node, _intake, clock = member
    me = node.identity.did
    topic, msg_type, signer, body = data.draw(st.sampled_from(_genuine_bodies(me)), label="message")
    body = data.draw(mutations(body), label="body")
    to = me if topic.startswith("inbox/") else None
    msg_id = secrets.token_hex(16)
    sealed = to is not None and data.draw(st.booleans(), label="sealed")
    try:
        if sealed:
            body = seal(body, to=me, from_did=signer.did, msg_id=msg_id, space=SPACE, type=msg_type)
        payload = sign_and_encode(signer, from_did=signer.did, type=msg_type, space=SPACE, to=to,
                                  seq=next(SEQS) if to is None else data.draw(st.integers(0, 2**53 - 1), label="seq"),
                                  ts=rfc3339(clock.now()), body=body, msg_id=msg_id)
    except ValueError:  # a body canonical JSON cannot carry (the sender's side refuses it)
        return
    _take(member, topic, payload, retained=to is None)
