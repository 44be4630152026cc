"""Space sync as data and pure functions: the connection table, backoff, sequence gaps, who may
publish where, topic classification, and the envelope fast path against the reference code."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from appliance.clock import rfc3339
from appliance.crypto import envelope
from appliance.crypto.jcs import canonical
from appliance.crypto.keys import SigningKey, public_key_from_did
from appliance.domain.sync import (
    TRANSITIONS,
    IllegalTransition,
    LinkAction,
    LinkEvent,
    LinkState,
    SpaceConfig,
    StreamTrack,
    backoff_delay,
    expand_ranges,
    gap_tracked,
    may_publish,
    step,
    subscriptions,
    to_ranges,
    topic_rule,
    valid_space_id,
)
from appliance.errors import MalformedMessage
from appliance.services.sync.codec import (
    SIGNED_EXTRA,
    encode_unsigned,
    open_sealed,
    seal,
    sign_and_encode,
    sign_stored,
)
from tests.unit.test_jcs import _random_document

ME, OTHER, OP = (SigningKey.generate().did for _ in range(3))


def config(status: str, username: str = ME) -> SpaceConfig:
    return SpaceConfig("s-1", "S", OP, "127.0.0.1", 1883, None, username, "pw", status, None)


def test_the_connection_table():
    state, actions = step(LinkState.STOPPED, LinkEvent.START)
    assert (state, actions) == (LinkState.CONNECTING, (LinkAction.CONNECT,))
    assert step(LinkState.CONNECTING, LinkEvent.CONNECTED) == (LinkState.CONNECTED,
                                                                (LinkAction.RESET_BACKOFF, LinkAction.SUBSCRIBE))
    assert step(LinkState.CONNECTED, LinkEvent.CONNECTION_LOST)[0] is LinkState.OFFLINE
    assert step(LinkState.OFFLINE, LinkEvent.RETRY)[0] is LinkState.CONNECTING
    assert step(LinkState.CONNECTED, LinkEvent.STOP) == (LinkState.STOPPING, (LinkAction.SAY_GOODBYE,))
    with pytest.raises(IllegalTransition, match="retry.*connected"):
        step(LinkState.CONNECTED, LinkEvent.RETRY)
    # every state but STOPPED can be stopped, and every path ends in STOPPED
    assert {s for s, e in TRANSITIONS if e is LinkEvent.STOP} == {LinkState.CONNECTING, LinkState.CONNECTED,
                                                                   LinkState.OFFLINE}


def test_backoff_grows_to_its_cap_with_jitter():
    assert backoff_delay(0, 0.5, 60, 0.0) == 0.25
    assert backoff_delay(0, 0.5, 60, 0.999) < 0.5
    assert backoff_delay(3, 0.5, 60, 0.0) == 2.0
    assert all(30 <= backoff_delay(50, 0.5, 60, r) <= 60 for r in (0, 0.5, 0.9999))


def test_stream_tracking_finds_and_closes_gaps():
    t = StreamTrack(0)
    assert not t.add(1)
    assert t.add(4) and t.missing() == [[2, 3]]
    assert t.add(6) and t.missing() == [[2, 3], [5, 5]]
    assert t.add(2) and t.missing() == [[3, 3], [5, 5]]
    assert t.add(3) and t.contiguous == 4 and t.missing() == [[5, 5]]
    assert not t.add(5) and t.contiguous == 6 and t.above == []
    assert not t.add(6)  # a duplicate changes nothing
    t.add(10)
    t.skip_through(9)
    assert t.contiguous == 10 and not t.above
    assert StreamTrack(0, [5000]).missing(limit=10) == [[1, 10]]


def test_ranges_round_trip_and_reject_junk():
    assert to_ranges([5, 1, 2, 3, 7, 8]) == [[1, 3], [5, 5], [7, 8]]
    assert expand_ranges([[1, 3], [7, 8]]) == [1, 2, 3, 7, 8]
    assert len(expand_ranges([[1, 10**9]], limit=1000)) == 1000
    for junk in ("x", [[3, 1]], [[0, 1]], [[1]], [[1, True]], [["1", 2]]):
        with pytest.raises(ValueError):
            expand_ranges(junk)


def test_who_may_publish_where():
    member, operator = config("member"), config("operator")
    assert may_publish(member, ME, f"catalog/{ME}/ds-1")
    assert may_publish(member, ME, f"node/{ME}/card")
    assert may_publish(member, ME, f"evidence/{ME}")
    assert may_publish(member, ME, f"inbox/{OTHER}")
    assert not may_publish(member, ME, f"catalog/{OTHER}/ds-1")
    assert not may_publish(member, ME, f"evidence/{OTHER}")
    assert not may_publish(member, ME, "operator/revocations")
    assert not may_publish(member, ME, f"catalog/{ME}/+")
    assert not may_publish(member, ME, f"catalog/{ME}//x")
    assert may_publish(operator, ME, "operator/revocations")
    assert may_publish(operator, ME, f"inbox/{OTHER}")
    assert not may_publish(operator, ME, f"catalog/{ME}/ds-1")
    joining = config("joining", username="join-tok123")
    assert joining.join_token == "tok123"
    assert may_publish(joining, ME, "operator/join/tok123")
    assert not may_publish(joining, ME, "operator/join/other")
    assert not may_publish(joining, ME, f"inbox/{OP}")
    assert not may_publish(config("joining"), ME, "operator/join/tok123")  # not a join account
    for status in ("revoked", "left"):
        assert not may_publish(config(status), ME, f"catalog/{ME}/ds-1")


def test_subscriptions_follow_the_status():
    assert subscriptions(config("joining", "join-t1"), ME) == ["operator/join/t1/reply"]
    assert subscriptions(config("operator"), ME) == ["#"]
    assert f"inbox/{ME}" in subscriptions(config("member"), ME)
    assert subscriptions(config("left"), ME) == []


def test_topic_rules_say_who_may_have_sent_what():
    assert topic_rule(f"catalog/{OTHER}/ds-1", OP).owner == OTHER
    assert topic_rule(f"inbox/{ME}", OP).to == ME
    assert topic_rule("operator/join/t1", OP).to == OP
    assert topic_rule("operator/join/t1/reply", OP).operator
    assert topic_rule("operator/revocations", OP).operator
    assert topic_rule("elsewhere/x", OP) is None
    assert topic_rule(f"node/{OTHER}/secret", OP) is None
    assert gap_tracked(f"inbox/{ME}", ME) and not gap_tracked(f"inbox/{OTHER}", ME)
    assert gap_tracked("operator/notices", ME) and not gap_tracked("operator/join/t1", ME)
    assert valid_space_id("shanghai-auto-parts") and not valid_space_id("Shanghai") and not valid_space_id("ab")


def test_the_signing_fast_path_makes_the_reference_bytes():
    key, to = SigningKey.generate(), SigningKey.generate().did
    rng = random.Random(4)
    for i in range(200):
        body = _random_document(rng)
        try:
            canonical(body)
        except ValueError:
            continue
        for recipient in (None, to):
            fast = sign_and_encode(key, from_did=key.did, type="t.x", space="s-1", to=recipient, seq=i,
                                   ts="2026-01-01T00:00:00.000Z", body=body, msg_id=f"m{i}")
            ref = envelope.sign_envelope(key, from_did=key.did, type="t.x", space="s-1", to=recipient, seq=i,
                                         ts="2026-01-01T00:00:00.000Z", body=body, id=f"m{i}")
            assert fast == envelope.encode(ref)
            envelope.verify_envelope(envelope.decode(fast))
            unsigned, at = encode_unsigned(from_did=key.did, type="t.x", space="s-1", to=recipient, seq=i,
                                           ts="2026-01-01T00:00:00.000Z", body=body, msg_id=f"m{i}")
            assert len(fast) == len(unsigned) + SIGNED_EXTRA + len(key.did)  # the size checked when queued


def test_an_envelope_kept_unsigned_is_signed_by_the_key_at_hand_and_a_damaged_one_is_refused():
    node, later = SigningKey.generate(), SigningKey.generate()
    unsigned, at = encode_unsigned(from_did=node.did, type="t.x", space="s-1", to=None, seq=7,
                                   ts="2026-01-01T00:00:00.000Z", body={"seq": 1, "space": ',"space":'}, msg_id="m")
    env = envelope.decode(sign_stored(later, unsigned, at))
    assert env["kid"] == later.did and env["seq"] == 7 and env["body"] == {"seq": 1, "space": ',"space":'}
    envelope.verify_envelope(env, lambda from_did, kid: public_key_from_did(kid))
    for damaged, offset in ((unsigned, at + 1), (unsigned, 0), (unsigned[: at + 9], at), (b"", 0)):
        with pytest.raises(ValueError):
            sign_stored(node, damaged, offset)


def test_timestamps_match_the_clock_format():
    for moment in (datetime(2026, 1, 1, tzinfo=timezone.utc), datetime.now(timezone.utc),
                   datetime(2026, 5, 6, 7, 8, 9, 999999, tzinfo=timezone(timedelta(hours=8)))):
        utc = moment.astimezone(timezone.utc)
        assert rfc3339(moment) == utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    east8 = timezone(timedelta(hours=8))
    assert rfc3339(datetime(2026, 5, 6, 7, 8, 9, 999999, tzinfo=east8)) == "2026-05-05T23:08:09.999Z"


def test_a_sealed_body_is_bound_to_its_envelope():
    alice, bob, mallory = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()

    def message(sender, body, msg_id="m1", type="t.x"):
        raw = sign_and_encode(sender, from_did=sender.did, type=type, space="s-1", to=bob.did, seq=1,
                              ts="2026-01-01T00:00:00.000Z", body=body, msg_id=msg_id)
        return envelope.verify_envelope(envelope.decode(raw))

    sealed = seal({"secret": 1}, to=bob.did, from_did=alice.did, msg_id="m1", space="s-1", type="t.x")
    assert open_sealed(message(alice, sealed), bob) == {"secret": 1}
    with pytest.raises(MalformedMessage, match="from"):
        open_sealed(message(mallory, sealed), bob)  # lifted into another sender's envelope
    with pytest.raises(MalformedMessage, match="id"):
        open_sealed(message(alice, sealed, msg_id="m2"), bob)  # replayed under a new id
    with pytest.raises(MalformedMessage, match="type"):
        open_sealed(message(alice, sealed, type="t.other"), bob)
    with pytest.raises(MalformedMessage):
        open_sealed(message(alice, sealed), mallory)  # not for this key
