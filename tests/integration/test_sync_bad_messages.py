"""Junk from the network is dropped with a counter and a rate-limited log line, never a crash or
a stuck queue: unsigned, forged, replayed, wrong-space, oversized, malformed, stale, misaddressed,
from a revoked sender, and sealed bodies lifted into another envelope."""

from __future__ import annotations

import secrets
import time
from datetime import timedelta

import paho.mqtt.client as paho

from appliance.clock import rfc3339
from appliance.crypto import envelope
from appliance.crypto.keys import SigningKey
from appliance.domain.sync import MessageDropped
from appliance.services.sync.codec import seal, sign_and_encode
from tests.integration.sync_helpers import (
    SPACE,
    eventually,
    join,
    make_node,
    published_bytes,
    record_pings,
    send_pings,
)

ROOT = f"tds/v1/{SPACE}"


def raw_publish(broker, topic: str, payload: bytes, retain: bool = False) -> None:
    """Publish bytes with a bare paho client (no dsnode code, no paho thread), QoS 1."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"attacker-{secrets.token_hex(4)}",
                         protocol=paho.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    deadline = time.monotonic() + 10
    while not client.is_connected() and time.monotonic() < deadline:
        client.loop(0.05)
    info = client.publish(f"{ROOT}/{topic}", payload, qos=1, retain=retain)
    while not info.is_published() and time.monotonic() < deadline:
        client.loop(0.05)
    assert info.is_published()
    client.disconnect()


def signed(key: SigningKey, clock, *, to=None, space=SPACE, body=None, ts=None, type="test.ping", seq=1) -> bytes:
    return sign_and_encode(key, from_did=key.did, type=type, space=space, to=to, seq=seq,
                           ts=ts or rfc3339(clock.now()), body=body if body is not None else {"n": -1},
                           msg_id=secrets.token_hex(16))


def test_every_kind_of_bad_message_is_dropped_and_counted(tmp_path, mosquitto, clock):
    a = make_node(tmp_path / "a", "a", clock)
    b = make_node(tmp_path / "b", "b", clock)
    mallory = SigningKey.generate()
    revoked = SigningKey.generate()
    try:
        join(a, mosquitto)
        join(b, mosquitto)
        b.sync.set_sender_filter(lambda space_id, sender: sender != revoked.did)
        applied = record_pings(b)
        drops = []
        b.bus.subscribe(lambda e: drops.append(e.reason), MessageDropped)
        a.start()
        b.start()
        send_pings(a, b.identity.did, [1])
        eventually(lambda: applied() == [1], what="a first good message")
        b.sync.wait_settled(timeout=10)
        genuine = published_bytes(a)
        me, inbox = b.identity.did, f"inbox/{b.identity.did}"
        before = b.sync.status()[0].dropped  # a's first message may have come twice (sent again on b's hello)
        drops.clear()

        raw_publish(mosquitto, inbox, genuine)  # replayed
        env = envelope.decode(genuine)
        unsigned = {k: v for k, v in env.items() if k != "sig"}
        raw_publish(mosquitto, inbox, envelope.encode(unsigned))  # unsigned
        tampered = dict(env, seq=env["seq"] + 1)
        raw_publish(mosquitto, inbox, envelope.encode(tampered))  # bad_signature
        raw_publish(mosquitto, f"catalog/{a.identity.did}/fake",  # forged: mallory on a's subtree
                    signed(mallory, clock, body={"title": "fake"}), retain=True)
        raw_publish(mosquitto, inbox, signed(mallory, clock, to=me, space="another-space"))  # wrong_space
        raw_publish(mosquitto, inbox, b"{" + b" " * (300 * 1024) + b"}")  # oversized
        raw_publish(mosquitto, inbox, b"\xff not json")  # malformed
        raw_publish(mosquitto, inbox, b'{"v":1,"type":"x","space":"%s","sig":"AAAA"}' % SPACE.encode())  # malformed
        raw_publish(mosquitto, inbox, b"")  # malformed (empty, not retained)
        raw_publish(mosquitto, inbox, signed(mallory, clock, to=a.identity.did))  # not_for_me
        old = rfc3339(clock.now() - timedelta(days=8))
        raw_publish(mosquitto, inbox, signed(mallory, clock, to=me, ts=old))  # stale
        raw_publish(mosquitto, inbox, signed(revoked, clock, to=me))  # from_revoked
        lifted = seal({"n": 99}, to=me, from_did=a.identity.did, msg_id="a-real-id", space=SPACE, type="test.ping")
        raw_publish(mosquitto, inbox, signed(mallory, clock, to=me, body=lifted))  # sealed body lifted: malformed
        raw_publish(mosquitto, "nowhere/at/all", signed(mallory, clock))  # outside the topic tree (b is not subscribed)

        send_pings(a, me, [2])  # the worker keeps working
        eventually(lambda: applied() == [1, 2], what="the next good message")
        expected = {"replayed": 1, "unsigned": 1, "bad_signature": 2, "wrong_space": 1, "oversized": 1,
                    "malformed": 4, "not_for_me": 1, "stale": 1, "from_revoked": 1}

        def new_drops():
            now = b.sync.status()[0].dropped
            return {k: now[k] - before.get(k, 0) for k in now if now[k] - before.get(k, 0)}

        eventually(lambda: new_drops() == expected, what=f"drop counters {expected}")
        assert sorted(drops) == sorted(r for r, n in expected.items() for _ in range(n))
        assert b.sync.catalog(SPACE) == []
        assert b.sync.status()[0].connected
    finally:
        a.close()
        b.close()


def test_a_handler_that_refuses_or_fails_does_not_stop_the_queue(tmp_path, mosquitto, clock, observed_errors):
    from appliance.errors import SyncError

    a = make_node(tmp_path / "a", "a", clock)
    b = make_node(tmp_path / "b", "b", clock)
    try:
        join(a, mosquitto)
        join(b, mosquitto)
        applied = record_pings(b)

        def picky(conn, msg):
            if msg.body["n"] == 2:
                raise SyncError("two is not welcome")
            if msg.body["n"] == 3:
                raise KeyError("a bug")

        b.sync.on("test.ping", picky)
        a.start()
        b.start()
        send_pings(a, b.identity.did, [1, 2, 3, 4])
        eventually(lambda: sorted(applied()) == [1, 4], what="the good ones")
        eventually(lambda: {k: v for k, v in b.sync.status()[0].dropped.items() if k != "replayed"}
                   == {"rejected": 1, "quarantined": 1}, what="counters")
        assert any("handler failed" in r.getMessage() for r in observed_errors)
    finally:
        a.close()
        b.close()


def test_a_handler_that_fails_after_replying_sends_no_reply(pair):
    from appliance.errors import SyncError

    a, b = pair
    replies = record_pings(a, type="test.reply")

    def reply_then_maybe_fail(conn, msg):
        n = msg.body["n"]
        b.sync.send(conn, SPACE, to=msg.sender, type="test.reply", body={"n": n})
        b.sync.publish(conn, SPACE, topic=f"catalog/{b.identity.did}/ds-{n}", type="t", body={"n": n}, retained=True)
        if n % 2 == 0:
            raise SyncError("changed its mind")  # its reply and its entry go with its other effects

    b.sync.on("test.ping", reply_then_maybe_fail)
    a.start()
    b.start()
    send_pings(a, b.identity.did, [1, 2, 3, 4, 5], per_tx=5)  # one batch at b: one transaction
    eventually(lambda: sorted(replies()) == [1, 3, 5], what="the replies of the messages that were applied")
    # the refused messages arrived: b does not ask a for them again (no gap, nothing to wait for)
    assert b.sync.wait_settled(timeout=5)
    entries = b.store.db.read(lambda c: sorted(t for (t,) in c.execute(
        "SELECT topic FROM sync_outbox WHERE topic LIKE 'catalog/%'")))
    assert entries == [f"catalog/{b.identity.did}/ds-{n}" for n in (1, 3, 5)]
    assert sorted(replies()) == [1, 3, 5]


def test_the_poison_messages_fuzzing_found_are_refused_by_a_running_node_and_the_next_is_applied(
        tmp_path, mosquitto, clock, observed_errors):
    """Each of these once stopped a node's sync or raised inside a handler (issue 15); sent over the
    broker to a running node, each is refused with a counted reason, none is a bug (quarantine),
    and the good message after them is applied."""
    from tests.integration.sync_helpers import OPERATOR

    a = make_node(tmp_path / "a", "a", clock)
    b = make_node(tmp_path / "b", "b", clock)
    try:
        join(a, mosquitto)
        join(b, mosquitto)
        applied = record_pings(b)
        a.start()
        b.start()
        send_pings(a, b.identity.did, [1])
        eventually(lambda: applied() == [1], what="a first good message")
        me, inbox = b.identity.did, f"inbox/{b.identity.did}"
        contract = "dsnode.contract."
        overflow_offer = {"@id": "urn:uuid:o", "@type": "Offer", "target": "urn:uuid:ds", "permission": [
            {"action": "use", "constraint": [
                {"leftOperand": "dateTime", "operator": "lt", "rightOperand": "0001-01-01T00:00:00+23:59"},
                {"leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": "P99999999999W"}]}]}
        dsp = {"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "consumerPid": "urn:uuid:c"}
        credential = {"type": 7, "issuer": OPERATOR.did, "credentialSubject": {"id": me, "memberOf": SPACE}}
        poison = [
            signed(a.keyring.signing_key(), clock, to=me, type=contract + "ContractAgreementMessage",
                   body={"@type": []}),
            signed(a.keyring.signing_key(), clock, to=me, type=contract + "ContractRequestMessage",
                   body={**dsp, "@type": "ContractRequestMessage", "offer": overflow_offer,
                         "callbackAddress": f"inbox/{a.identity.did}"}),
            signed(OPERATOR, clock, to=me, type="dsnode.membership.credential", body={"credential": credential}),
        ]
        deep = b'{"v":1,"body":' + b"[" * 5000 + b"]" * 5000 + b"}"
        huge = b'{"v":1,"seq":1' + b"0" * 5000 + b"}"
        for payload in [*poison, deep, huge]:
            raw_publish(mosquitto, inbox, payload)
        send_pings(a, me, [2])
        eventually(lambda: applied() == [1, 2], what="the good message after the poison")
        status = b.sync.status()[0]
        assert status.connected and status.quarantined == 0
        assert not b.sync.quarantined(SPACE)
    finally:
        a.close()
        b.close()
