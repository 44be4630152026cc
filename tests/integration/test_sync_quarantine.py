"""A message that hits a bug never stops a node's sync: it is acknowledged, kept in quarantine with
its bytes, counted and shown, and applied once a version without the bug runs.

The bugs are put in by the tests (a handler that raises, a key lookup that raises): once the
parsers are fixed no real input produces one, and the point is what happens when the next bug is met.
"""

from __future__ import annotations

import pytest

import appliance
from appliance.node import Node
from appliance.services.sync import quarantine
from appliance.services.sync.codec import Inspector
from tests.integration.sync_helpers import (FAST, PASSPHRASE, SPACE, eventually, join, make_node, record_pings,
                                            send_pings)


def _status(node: Node):
    return node.sync.status(SPACE)[0]


def _reopen(node: Node, clock) -> Node:
    home = node.home
    node.close()
    again = Node.open(home, PASSPHRASE, clock=clock, sync_timers=FAST)
    again.sync.set_catalog_filter(lambda space_id, provider, dataset_id, entry: True)
    return again


def test_a_handler_bug_quarantines_its_message_and_a_retry_after_the_fix_applies_it(pair, observed_errors):
    a, b = pair
    applied = record_pings(b)
    fixed = False

    def buggy(conn, msg):
        if msg.body["n"] == 3 and not fixed:
            raise KeyError("a bug")

    b.sync.on("test.ping", buggy)
    a.start()
    b.start()
    send_pings(a, b.identity.did, [1, 2, 3, 4])
    eventually(lambda: sorted(applied()) == [1, 2, 4], what="the messages around the poisoned one")
    eventually(lambda: _status(b).quarantined == 1, what="the quarantined message shown in the status")
    kept = b.sync.quarantined(SPACE)
    assert [(r.stage, r.error.split(" ")[0]) for r in kept] == [("apply", "KeyError")]
    assert _status(b).dropped.get("quarantined") == 1  # a redelivery of it counts as replayed
    assert b.sync.wait_settled(timeout=10)  # nothing is waiting: the broker got its acknowledgement
    assert any("kept in quarantine" in r.getMessage() for r in observed_errors)

    fixed = True
    assert b.sync.retry_quarantined(SPACE) == (1, 0)
    assert sorted(applied()) == [1, 2, 3, 4]
    assert b.sync.quarantined(SPACE) == [] and _status(b).quarantined == 0
    assert b.sync.retry_quarantined(SPACE) == (0, 0)
    assert sorted(applied()) == [1, 2, 3, 4]  # applied once


@pytest.mark.slow
def test_a_message_whose_checks_hit_a_bug_does_not_stop_the_link_and_an_upgrade_applies_it(
        tmp_path, mosquitto, clock, monkeypatch, observed_errors):
    a = make_node(tmp_path / "a", "a", clock)
    b = make_node(tmp_path / "b", "b", clock)
    try:
        join(a, mosquitto)
        join(b, mosquitto)
        inspect = Inspector.inspect

        def buggy_inspect(self, topic, payload, retained, now):  # a parser bug met by one message's content
            checked = inspect(self, topic, payload, retained, now)
            if checked is not None and isinstance(checked.body, dict) and checked.body.get("n") == 13:
                raise RecursionError("maximum recursion depth exceeded")
            return checked

        monkeypatch.setattr(Inspector, "inspect", buggy_inspect)
        applied = record_pings(b)
        a.start()
        b.start()
        send_pings(a, b.identity.did, [1, 13, 2])
        eventually(lambda: sorted(applied()) == [1, 2], what="the good messages after the poisoned one")
        eventually(lambda: _status(b).quarantined == 1, what="the quarantined message")
        assert [r.stage for r in b.sync.quarantined(SPACE)] == ["inspect"]
        status = _status(b)
        assert status.connected and status.last_error is None  # the link never fell over
        assert any("kept in quarantine" in r.getMessage() for r in observed_errors)

        # Restarted under the same version (the bug is still there): the link does not retry the
        # message by itself, and when its seq is asked for again (b could not read it, so it looks
        # missing) the copy that comes is known and counted as replayed, until b gives up asking.
        b = _reopen(b, clock)
        applied = record_pings(b)
        b.start()
        assert b.sync.wait_settled(timeout=30)
        assert sorted(applied()) == [1, 2] and _status(b).quarantined == 1

        # A new version (without the bug) starts: the link tries the quarantine again by itself.
        monkeypatch.setattr(Inspector, "inspect", inspect)
        monkeypatch.setattr(appliance, "__version__", appliance.__version__ + ".post1")
        b = _reopen(b, clock)
        applied = record_pings(b)
        b.start()
        eventually(lambda: sorted(applied()) == [1, 2, 13], what="the quarantined message applied after the upgrade")
        assert _status(b).quarantined == 0
    finally:
        a.close()
        b.close()


def test_a_full_quarantine_drops_and_counts_instead_of_growing(node):
    node.store.db.write(lambda c: [quarantine.keep(c, SPACE, f"inbox/x{i}", b"{}", False, "2026-01-01T00:00:00Z",
                                                   "apply", "KeyError") for i in range(quarantine.MAX_ROWS)])
    assert node.store.db.write(lambda c: quarantine.keep(c, SPACE, "inbox/one-more", b"{}", False,
                                                         "2026-01-01T00:00:00Z", "apply", "KeyError")) == "full"
    again = node.store.db.write(lambda c: quarantine.keep(c, SPACE, "inbox/x0", b"{}", False,
                                                          "2026-01-01T00:00:00Z", "inspect", "TypeError"))
    assert again == "again"  # the same message failing again is the same row, tried once more
    rows = node.store.db.read(lambda c: quarantine.rows(c, SPACE))
    assert len(rows) == quarantine.MAX_ROWS and (rows[0].attempts, rows[0].stage) == (2, "inspect")
