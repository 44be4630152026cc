"""Space sync with a real mosquitto: direct messages, retained catalog, presence, status, two spaces."""

from __future__ import annotations

import pytest

from appliance.domain.sync import SyncStateChanged
from appliance.errors import SpaceExists, TopicNotAllowed
from tests.brokers import Mosquitto
from tests.integration.sync_helpers import (
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
    payload = a.store.db.read(lambda c: c.execute("SELECT payload FROM sync_outbox WHERE type = 'test.ping'").fetchone()[0])
    assert b'"sealed"' in bytes(payload) and b'"n"' not in bytes(payload)  # the broker never sees the body
    eventually(lambda: queued(a) == 0, what="outbox drained")
    a.stop()
    b.stop()
    assert sorted(applied()) == [1, 2, 3]


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
    assert st.last_sync and st.last_error is None and st.membership == "member" and st.broker.endswith(str(mosquitto.port))
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


def test_a_node_may_publish_only_under_its_own_subtrees(pair):
    a, b = pair
    other = b.identity.did
    with pytest.raises(TopicNotAllowed):
        a.store.db.write(lambda c: a.sync.publish(c, SPACE, topic=f"catalog/{other}/x", type="t", body={}, retained=True))
    with pytest.raises(TopicNotAllowed):
        a.store.db.write(lambda c: a.sync.publish(c, SPACE, topic="operator/revocations", type="t", body={}))
    with pytest.raises(SpaceExists):
        join(a, type("B", (), {"port": 1883})())
    assert queued(a) == 0  # nothing half-written
