"""Retained state survives a broker that lost it: when a node connects and the broker has no session
for it, the node publishes its retained state again (its card, catalog entries, checkpoint; the
operator its space, revocation list, templates), so a member joining afterwards sees the space as
it was. Members that already had that state take the repeat silently."""

from __future__ import annotations

from appliance.domain.sync import SyncStateChanged
from appliance.operator.broker_config import ListenerConfig
from appliance.operator.templates import standard_templates
from tests.spaces import SPACE, SpaceHarness, wait_for

ENTRY = {"@type": "dcat:Dataset", "dct:title": "注塑机温度数据", "dcat:keyword": ["注塑", "温度"],
         "odrl:hasPolicy": [{"@type": "odrl:Offer", "permission": [{"action": "use"}]}]}


def _prepare(space: SpaceHarness):
    """a lists ds-1 (approved), c is revoked; b saw the listing. Returns (a, b, c)."""
    a, b, c = space.member("a"), space.member("b"), space.member("c")
    a.membership.request_listing(SPACE, "ds-1", ENTRY, pricing={"price": "100", "unit": "CNY/月"},
                                 compliance="数据来源合法，已脱敏")
    request = wait_for(lambda: space.operator.operator.listings("pending"), what="the listing request")[0]
    space.operator.operator.approve_listing(request.id)
    wait_for(lambda: b.sync.catalog(SPACE, "注塑"), what="the entry to reach b")
    space.operator.operator.revoke(c.identity.did, "违反数据使用协议")
    space.wait_status(c, "revoked")
    wait_for(lambda: b.membership.revocations.is_revoked(SPACE, c.identity.did), what="b to learn of the revocation")
    space.settle(space.operator, a, b)
    return a, b, c


def _connections(*nodes) -> list[list[str]]:
    """Per node, a list that grows by one each time its link connects from now on."""
    seen: list[list[str]] = []
    for node in nodes:
        states: list[str] = []
        node.bus.subscribe(lambda e, states=states: states.append(e.state) if e.state == "connected" else None,
                           SyncStateChanged)
        seen.append(states)
    return seen


def _reconnected(space: SpaceHarness, nodes, connections) -> None:
    for node, states in zip(nodes, connections, strict=True):
        wait_for(lambda s=states: s, timeout=20, what=f"{node.identity.name} to reconnect")
    space.settle(*nodes)


def _late_joiner_sees_everything(space: SpaceHarness, a, c) -> None:
    d = space.member("d")
    (entry,) = wait_for(lambda: d.sync.catalog(SPACE, "注塑"), what="the listing to reach the late joiner")
    assert entry.dataset_id == "ds-1" and entry.provider == a.identity.did
    wait_for(lambda: d.membership.revocations.is_revoked(SPACE, c.identity.did),
             what="the late joiner to get the revocation list")
    wait_for(lambda: d.membership.templates(SPACE).keys() == standard_templates().keys(),
             what="the late joiner to get the templates")


def _drops(*nodes) -> list[dict]:
    """Each node's drop counters (the revoked member's own goodbye is dropped before the restart),
    leaving out ``replayed``: a direct message whose confirmation was still on its way when the
    broker lost the sessions is sent again to the peer's new session (at-least-once), and the peer
    drops the duplicate under that reason. Retained state never goes that way: a repeat of the
    state a node has is taken silently, which is what these counters check."""
    return [{k: v for k, v in node.sync.status(SPACE)[0].dropped.items() if k != "replayed"} for node in nodes]


def test_an_embedded_broker_restart_loses_nothing_a_late_joiner_needs(tmp_path):
    from edge.broker_process import start_embedded_broker

    space = SpaceHarness(tmp_path / "space", embedded=True)
    try:
        a, b, c = _prepare(space)
        before = _drops(space.operator, a, b)
        connections = _connections(space.operator, a, b)
        space.broker.stop()
        space.broker = start_embedded_broker(space.operator, ListenerConfig(port=space.port), space.root / "broker2")
        _reconnected(space, (space.operator, a, b), connections)
        # a and b already had this state: the repeat is silent (no "replayed" or other drops)
        assert _drops(space.operator, a, b) == before
        _late_joiner_sees_everything(space, a, c)
        assert [e.dataset_id for e in b.sync.catalog(SPACE)] == ["ds-1"]
        assert _drops(space.operator, a, b) == before
    finally:
        space.close()


def test_a_mosquitto_that_lost_its_persistence_file_is_filled_again(tmp_path):
    space = SpaceHarness(tmp_path / "space")
    try:
        a, b, c = _prepare(space)
        before = _drops(space.operator, a, b)
        connections = _connections(space.operator, a, b)
        space.broker.stop()
        (space.broker.dir / "mosquitto.db").unlink()
        space.broker.start()
        _reconnected(space, (space.operator, a, b), connections)
        assert _drops(space.operator, a, b) == before
        _late_joiner_sees_everything(space, a, c)
        assert _drops(space.operator, a, b) == before
    finally:
        space.close()


def test_a_broker_that_kept_its_session_gets_nothing_again(tmp_path):
    """A plain broker restart (persistence kept): sessions resume, nothing is published again."""
    space = SpaceHarness(tmp_path / "space")
    try:
        a = space.member("a")
        space.settle(space.operator, a)

        def retained_rows(node):  # a republished row is queued again and gets a new sent time
            return node.store.db.read(lambda c: c.execute(
                "SELECT id, sent FROM sync_outbox WHERE retained = 1 ORDER BY id").fetchall())

        before = {n: retained_rows(n) for n in (space.operator, a)}
        connections = _connections(space.operator, a)
        space.broker.restart()
        _reconnected(space, (space.operator, a), connections)
        space.settle(space.operator, a)
        for node, rows in before.items():
            assert rows and retained_rows(node) == rows, f"{node.identity.name} published its retained state again"
    finally:
        space.close()


def test_the_outbox_purge_keeps_the_latest_retained_message_of_each_topic(tmp_path):
    """Past the resend window the outbox forgets sent messages, but not the latest retained one of a
    topic: that is what is published again to a broker that lost it (a clear goes: nothing to resend)."""
    from types import SimpleNamespace

    from appliance.clock import FixedClock
    from appliance.services.sync import outbox
    from tests.integration.sync_helpers import join, make_node

    node = make_node(tmp_path / "n", "节点", FixedClock())
    try:
        did, sync, db = node.identity.did, node.sync, node.store.db
        join(node, SimpleNamespace(port=1883))

        def publish(conn):
            for n in (1, 2):
                sync.publish(conn, SPACE, topic=f"catalog/{did}/ds-1", type="test.entry", body={"n": n}, retained=True)
            sync.publish(conn, SPACE, topic=f"catalog/{did}/ds-2", type="test.entry", body={"n": 1}, retained=True)
            sync.publish(conn, SPACE, topic=f"catalog/{did}/ds-2", type=None, body=None, retained=True)
            sync.publish(conn, SPACE, topic=f"node/{did}/news", type="test.news", body={"n": 1})

        db.write(publish)
        streams = [f"catalog/{did}/ds-1", f"catalog/{did}/ds-2", f"node/{did}/news"]
        seqs_before = db.read(lambda c: [outbox.next_seq(c, SPACE, s) for s in streams])
        db.write(lambda c: outbox.mark_sent(c, [r[0] for r in c.execute("SELECT id FROM sync_outbox")],
                                            "2026-01-01T00:00:00.000Z"))
        assert db.write(lambda c: outbox.purge(c, "2099-01-01T00:00:00.000Z")) == 4

        def kept(c):
            return sorted((t, bytes(p) != b"") for t, p in c.execute("SELECT topic, payload FROM sync_outbox"))

        assert db.read(kept) == [(f"catalog/{did}/ds-1", True)]
        assert db.read(lambda c: [outbox.next_seq(c, SPACE, s) for s in streams]) == seqs_before  # none forgotten
        assert seqs_before[0] > 2 and seqs_before[1] > 1 and seqs_before[2] == 2  # above every seq used (a
        # retained topic reserves a block of seqs at a time)
        assert db.write(lambda c: outbox.requeue_retained(c, SPACE)) == 1
        (queued,) = db.read(lambda c: outbox.fetch_queued(c, SPACE, after=0, limit=10))
        assert queued.topic == f"catalog/{did}/ds-1" and b'"n":2' in queued.payload
    finally:
        node.close()
