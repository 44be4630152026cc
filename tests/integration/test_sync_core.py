"""Space sync with a real mosquitto: direct messages, retained catalog, presence, status, two spaces."""

from __future__ import annotations

import pytest

from appliance.domain.sync import SyncStateChanged
from appliance.errors import SpaceExists, TopicNotAllowed
from appliance.node import Node
from tests.brokers import Mosquitto
from tests.integration.sync_helpers import (
    FAST,
    PASSPHRASE,
    SPACE,
    eventually,
    join,
    make_node,
    queued,
    record_pings,
    send_pings,
)


def test_a_direct_message_is_sealed_delivered_and_applied_once(pair):
    a, b = pair
    applied = record_pings(b)
    a.start()
    b.start()
    send_pings(a, b.identity.did, [1, 2, 3])
    eventually(lambda: sorted(applied()) == [1, 2, 3], what="three pings applied")
    payload = a.store.db.read(
        lambda c: c.execute("SELECT payload FROM sync_outbox WHERE type = 'test.ping'").fetchone()[0])
    assert b'"sealed"' in bytes(payload) and b'"n"' not in bytes(payload)  # the broker never sees the body
    eventually(lambda: queued(a) == 0, what="outbox drained")
    a.stop()
    b.stop()
    assert sorted(applied()) == [1, 2, 3]


def test_messages_queued_before_a_key_rotation_go_out_signed_by_the_key_they_were_queued_under(pair):
    a, b = pair
    kids = []
    b.sync.on("test.ping", lambda conn, msg: kids.append((msg.body["n"], msg.envelope["kid"])))
    first_key = a.identity.current_key_did()
    send_pings(a, b.identity.did, [1])  # queued offline, kept unsigned until it is published
    a.identity.rotate_key()  # erases the first key's private half: the queued row is signed with it now
    send_pings(a, b.identity.did, [2])
    a.start()
    b.start()
    eventually(lambda: 1 in dict(kids), what="the message queued before the rotation")
    assert dict(kids)[1] == first_key  # b knows that key without a card: nothing was dropped
    assert a.identity.current_key_did() != first_key


def test_a_message_sent_before_the_recipient_ever_connected_still_arrives(pair):
    a, b = pair
    applied = record_pings(b)
    send_pings(a, b.identity.did, [7])
    a.start()
    eventually(lambda: queued(a) == 0, what="sender drained to the broker")  # nobody had a session for b yet
    b.start()
    eventually(lambda: applied() == [7], what="the early message, sent again when b came online")


def test_a_node_offline_while_others_send_receives_everything_on_return(pair):
    a, b = pair
    applied = record_pings(b)
    a.start()
    b.start()
    b.sync.wait_settled(timeout=10)
    b.stop()  # b has a session at the broker now; QoS 1 messages wait there for it
    send_pings(a, b.identity.did, range(50), per_tx=10)
    eventually(lambda: queued(a) == 0, what="sent to the broker")
    assert applied() == []
    b.start()
    eventually(lambda: len(applied()) == 50, what="all 50 after coming back")
    b.sync.wait_settled(timeout=10)
    assert sorted(applied()) == list(range(50))


def test_a_fresh_node_gets_the_whole_retained_catalog_and_delisting_clears_it(tmp_path, mosquitto, clock):
    a = make_node(tmp_path / "a", "provider", clock)
    join(a, mosquitto)
    a.start()
    me = a.identity.did

    def list_entry(conn, dataset, title):
        a.sync.publish(conn, SPACE, topic=f"catalog/{me}/{dataset}", type="dsnode.catalog.entry",
                       body={"dataset_id": dataset, "entry": {"dct:title": title}}, retained=True)

    a.store.db.write(lambda c: [list_entry(c, f"ds-{i}", f"产线传感器数据 {i}") for i in range(5)])
    a.store.db.write(lambda c: list_entry(c, "ds-9", "Quality report"))
    eventually(lambda: queued(a) == 0, what="catalog published")

    b = make_node(tmp_path / "b", "late joiner", clock)
    try:
        join(b, mosquitto)
        b.start()
        eventually(lambda: len(b.sync.catalog(SPACE)) == 6, what="the whole catalog at the late joiner")
        assert {e.dataset_id for e in b.sync.catalog(SPACE, "传感器")} == {f"ds-{i}" for i in range(5)}
        assert [e.dataset_id for e in b.sync.catalog(SPACE, "quality")] == ["ds-9"]
        assert b.sync.catalog(SPACE, "传感器 4")[0].entry == {"dataset_id": "ds-4",
                                                            "entry": {"dct:title": "产线传感器数据 4"}}

        a.store.db.write(lambda c: a.sync.publish(c, SPACE, topic=f"catalog/{me}/ds-0", type="dsnode.catalog.entry",
                                                  body=None, retained=True))
        eventually(lambda: len(b.sync.catalog(SPACE)) == 5, what="delisting seen by a connected node")
        b.stop()
        assert len(b.sync.catalog(SPACE)) == 5  # searchable offline

        b.sync.set_catalog_filter(lambda space_id, provider, dataset_id, entry: dataset_id != "ds-9")
        assert "ds-9" not in {e.dataset_id for e in b.sync.catalog(SPACE)}
    finally:
        b.close()

    c = make_node(tmp_path / "c", "later still", clock)
    try:
        join(c, mosquitto)
        c.start()
        eventually(lambda: len(c.sync.catalog(SPACE)) == 5, what="catalog without the delisted entry")
        c.sync.wait_settled(timeout=10)
        assert "ds-0" not in {e.dataset_id for e in c.sync.catalog(SPACE)}
    finally:
        c.close()
        a.close()


def test_status_presence_and_events(pair, mosquitto):
    a, b = pair
    states = []
    a.bus.subscribe(lambda e: states.append(e.state), SyncStateChanged)
    assert a.sync.status()[0].state == "stopped"
    send_pings(a, b.identity.did, [1, 2])
    assert a.sync.status()[0].queued == 2
    a.start()
    b.start()
    eventually(lambda: a.sync.status()[0].connected and a.sync.status()[0].queued == 0, what="a connected, sent")
    st = a.sync.status()[0]
    assert st.last_sync and st.last_error is None and st.membership == "member"
    assert st.broker.endswith(str(mosquitto.port))
    assert states[:2] == ["connecting", "connected"]
    peers = eventually(lambda: {p.did: p for p in b.sync.peers(SPACE) if p.presence == "online" and p.card},
                       what="a's card and status at b")
    assert peers[a.identity.did].name == "节点甲"

    mosquitto.stop()
    eventually(lambda: a.sync.status()[0].state == "offline", what="a notices the broker is gone")
    assert a.sync.status()[0].last_error
    mosquitto.start()
    eventually(lambda: a.sync.status()[0].connected, what="a reconnects by itself")

    a.stop()
    eventually(lambda: any(p.did == a.identity.did and p.presence == "offline" for p in b.sync.peers(SPACE)),
               what="a's goodbye")


def test_two_spaces_on_two_brokers_at_once(tmp_path, mosquitto, clock):
    other = Mosquitto(tmp_path / "broker2")
    a = make_node(tmp_path / "a", "a", clock)
    b = make_node(tmp_path / "b", "b", clock)
    c = make_node(tmp_path / "c", "c", clock)
    try:
        join(a, mosquitto)
        join(a, other, space_id="second-space")
        join(b, mosquitto)
        join(c, other, space_id="second-space")
        for n in (a, b, c):
            n.start()
        me = a.identity.did
        a.store.db.write(lambda conn: a.sync.publish(conn, "second-space", topic=f"catalog/{me}/only-here",
                                                     type="dsnode.catalog.entry", body={"title": "仅第二空间"},
                                                     retained=True))
        applied_b, applied_c = record_pings(b), record_pings(c)
        send_pings(a, b.identity.did, [1])
        send_pings(a, c.identity.did, [2], space_id="second-space")
        eventually(lambda: applied_b() == [1] and applied_c() == [2], what="one message in each space")
        eventually(lambda: [e.dataset_id for e in c.sync.catalog("second-space")] == ["only-here"], what="listing")
        b.sync.wait_settled(timeout=10)
        assert b.sync.catalog(SPACE) == []
        assert {s.space_id: s.connected for s in a.sync.status()} == {SPACE: True, "second-space": True}
    finally:
        for n in (a, b, c):
            n.close()
        other.stop()


def test_leaving_a_space_stops_publishing_at_once_and_a_rolled_back_leave_does_not(pair):
    a, _ = pair
    did = a.identity.did

    def publish(c, n):
        return a.sync.publish(c, SPACE, topic=f"catalog/{did}/ds-{n}", type="t", body={"n": n}, retained=True)

    a.store.db.write(lambda c: publish(c, 1))  # the space's status is remembered from here on

    def leave_then_fail(c):
        a.sync.update_space(c, SPACE, status="left")
        with pytest.raises(TopicNotAllowed):  # within the same transaction, at once
            publish(c, 2)
        raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        a.store.db.write(leave_then_fail)
    a.store.db.write(lambda c: publish(c, 3))  # the leave was rolled back: still a member
    a.store.db.write(lambda c: a.sync.update_space(c, SPACE, status="left"))
    with pytest.raises(TopicNotAllowed):
        a.store.db.write(lambda c: publish(c, 4))
    topics = a.store.db.read(lambda c: [t for (t,) in c.execute("SELECT topic FROM sync_outbox ORDER BY id")])
    assert [t for t in topics if t.startswith("catalog/")] == [f"catalog/{did}/ds-1", f"catalog/{did}/ds-3"]


def test_a_retained_topic_never_reuses_a_seq_across_rollbacks_and_restarts(tmp_path, clock):
    home = tmp_path / "n"
    node = make_node(home, "节点", clock)
    join(node, type("B", (), {"port": 1883})())
    did = node.identity.did
    topic = f"catalog/{did}/ds-1"

    def publish(c):
        return node.sync.publish(c, SPACE, topic=topic, type="t", body={}, retained=True)

    def seqs(n):
        return n.store.db.read(lambda c: [s for (s,) in c.execute(
            "SELECT seq FROM sync_outbox WHERE topic = ? ORDER BY id", (topic,))])

    node.store.db.write(lambda c: [publish(c) for _ in range(16)])  # the first block of seqs, used up

    def publish_then_fail(c):
        publish(c)  # reserves the next block, which the rollback takes back
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        node.store.db.write(publish_then_fail)
    node.store.db.write(publish)
    node.close()
    node = Node.open(home, PASSPHRASE, clock=clock, sync_timers=FAST)
    try:
        node.store.db.write(publish)
        used = seqs(node)
        assert used[:16] == list(range(1, 17)) and len(used) == 18
        assert used == sorted(set(used))  # always higher, never twice (a retained topic may skip)
    finally:
        node.close()


def test_a_node_may_publish_only_under_its_own_subtrees(pair):
    a, b = pair
    other = b.identity.did
    with pytest.raises(TopicNotAllowed):
        a.store.db.write(lambda c: a.sync.publish(c, SPACE, topic=f"catalog/{other}/x", type="t", body={},
                                                  retained=True))
    with pytest.raises(TopicNotAllowed):
        a.store.db.write(lambda c: a.sync.publish(c, SPACE, topic="operator/revocations", type="t", body={}))
    with pytest.raises(SpaceExists):
        join(a, type("B", (), {"port": 1883})())
    assert queued(a) == 0  # nothing half-written
