"""A long contracts list: 300 negotiations with peers in two spaces list at once, each row naming its
dataset and peer, in a handful of store reads (not three a row, which made the page slow to open)."""

from __future__ import annotations

import threading
from collections import Counter

from appliance.clock import rfc3339
from appliance.domain.contracts import Negotiation
from appliance.i18n import t
from appliance.services.contracts import store as contract_rows

SPACES = ("urn:space:a", "urn:space:b")
COUNT = 300


def _fill(node) -> None:
    now = rfc3339(node.clock.now())

    def work(conn) -> None:
        for s, space in enumerate(SPACES):
            for p in range(5):
                conn.execute("INSERT INTO sync_peer (space_id, did, name, org, updated) VALUES (?, ?, ?, ?, ?)",
                             (space, f"did:key:z6MkPeer{s}{p}", f"节点{s}{p}", "示例公司", now))
        for i in range(COUNT):
            contract_rows.insert(conn, Negotiation(
                id=f"urn:uuid:neg-{i:04d}", peer_pid=None, role="consumer", space_id=SPACES[i % 2],
                peer=f"did:key:z6MkPeer{i % 2}{i % 5}", dataset_id=f"urn:dataset:{i % 7}", offer={}, state="REQUESTED",
                pending=False, reason="", deadline=None, created=now, updated=now))

    node.store.db.write(work)


def test_three_hundred_negotiations_list_in_a_few_reads(qtbot, desktop):
    node = desktop.node
    _fill(node)
    page = desktop.window.show_page("contracts")
    reads = []
    read = node.store.db.read
    gui = threading.get_ident()  # the node's own threads read too, meanwhile

    def counted(fn, *args, **kwargs):
        if threading.get_ident() == gui:
            reads.append(fn.__qualname__.split(".<locals>")[0])
        return read(fn, *args, **kwargs)

    node.store.db.read = counted
    try:
        page.refresh()
    finally:
        node.store.db.read = read
    assert page.list.rowCount() == COUNT
    rows = [(page.list.item(r, 2).text(), page.list.item(r, 3).text()) for r in range(COUNT)]
    assert rows[7] == ("0", t("ui.pr.listing_in", "节点12", "示例公司")), "an unknown dataset by its short id"
    assert {peer for _, peer in rows} == {t("ui.pr.listing_in", f"节点{s}{p}", "示例公司")
                                          for s in range(2) for p in range(5)}
    distinct = len({(SPACES[i % 2], i % 7) for i in range(COUNT)})  # each dataset's catalog entries, once
    assert len(reads) <= distinct + len(SPACES) + 5, Counter(reads)
