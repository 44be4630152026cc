"""Auto-approval rules as stored: numbered in the order they are tried, and removable by number."""

from __future__ import annotations

import sqlite3

from appliance.services.contracts import approvals
from appliance.services.contracts.approvals import Rule


def _conn():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE contract_rule (id INTEGER PRIMARY KEY, rule TEXT NOT NULL)")
    return conn


def test_a_removed_rule_approves_nothing_more_and_the_others_keep_their_numbers():
    conn = _conn()
    first = approvals.add(conn, Rule(dataset="ds-1"))
    second = approvals.add(conn, Rule(orgs=("示例制造",), min_grade=3))
    assert approvals.numbered(conn) == [(first, Rule(dataset="ds-1")), (second, Rule(orgs=("示例制造",), min_grade=3))]
    request = dict(dataset="ds-1", offer_id="urn:offer:a", peer="did:key:z6Mk", org="别家", listed=True)
    assert approvals.auto_rule(conn, **request) == Rule(dataset="ds-1")
    assert approvals.remove(conn, first) == Rule(dataset="ds-1")
    assert approvals.auto_rule(conn, **request) is None, "the request waits for a person again"
    assert approvals.numbered(conn) == [(second, Rule(orgs=("示例制造",), min_grade=3))]
    assert approvals.remove(conn, first) is None, "removing it twice finds nothing"
