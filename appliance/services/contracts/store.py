"""Rows of the contracts tables: negotiations, their timeline, agreements."""

from __future__ import annotations

import json

from appliance.domain.contracts import Negotiation, Step
from appliance.errors import NegotiationNotFound

_COLS = "id, peer_pid, role, space_id, peer, dataset_id, offer, state, pending, reason, deadline, created, updated"


def _row(r) -> Negotiation:
    return Negotiation(id=r[0], peer_pid=r[1], role=r[2], space_id=r[3], peer=r[4], dataset_id=r[5],
                       offer=json.loads(r[6]), state=r[7], pending=bool(r[8]), reason=r[9], deadline=r[10],
                       created=r[11], updated=r[12])


def insert(conn, n: Negotiation) -> None:
    conn.execute(f"INSERT INTO contract_negotiation ({_COLS}) VALUES ({', '.join('?' * 13)})",
                 (n.id, n.peer_pid, n.role, n.space_id, n.peer, n.dataset_id, json.dumps(n.offer, ensure_ascii=False),
                  n.state, int(n.pending), n.reason, n.deadline, n.created, n.updated))


def update(conn, n: Negotiation) -> None:
    conn.execute("UPDATE contract_negotiation SET peer_pid = ?, offer = ?, state = ?, pending = ?, reason = ?, "
                 "deadline = ?, updated = ? WHERE id = ?",
                 (n.peer_pid, json.dumps(n.offer, ensure_ascii=False), n.state, int(n.pending), n.reason, n.deadline,
                  n.updated, n.id))


def find(conn, negotiation_id: str) -> Negotiation | None:
    r = conn.execute(f"SELECT {_COLS} FROM contract_negotiation WHERE id = ?", (negotiation_id,)).fetchone()
    return _row(r) if r else None


def get(conn, negotiation_id: str) -> Negotiation:
    found = find(conn, negotiation_id)
    if found is None:
        raise NegotiationNotFound(negotiation_id)
    return found


def by_peer_pid(conn, space_id: str, peer: str, peer_pid: str) -> Negotiation | None:
    r = conn.execute(f"SELECT {_COLS} FROM contract_negotiation WHERE space_id = ? AND peer = ? AND peer_pid = ?",
                     (space_id, peer, peer_pid)).fetchone()
    return _row(r) if r else None


def all_rows(conn, *, state: str | None = None, pending: bool | None = None) -> list[Negotiation]:
    sql = f"SELECT {_COLS} FROM contract_negotiation WHERE 1"
    args: list[str | int] = []
    if state:
        sql, args = sql + " AND state = ?", [*args, state]
    if pending is not None:
        sql, args = sql + " AND pending = ?", [*args, int(pending)]
    return [_row(r) for r in conn.execute(sql + " ORDER BY created, id", args)]


def stale(conn, now: str) -> list[Negotiation]:
    return [_row(r) for r in conn.execute(
        f"SELECT {_COLS} FROM contract_negotiation WHERE deadline IS NOT NULL AND deadline <= ? "
        "AND state NOT IN ('FINALIZED', 'TERMINATED') ORDER BY deadline", (now,))]


def add_step(conn, negotiation_id: str, *, ts: str, event: str, who: str, direction: str, before: str, after: str,
             reason: str = "", message: dict | None = None) -> None:
    conn.execute("INSERT INTO contract_step (negotiation_id, n, ts, event, who, direction, state_before, state_after, "
                 "reason, message) SELECT ?, COALESCE(MAX(n) + 1, 0), ?, ?, ?, ?, ?, ?, ?, ? FROM contract_step "
                 "WHERE negotiation_id = ?",  # the next step number and the row in one statement
                 (negotiation_id, ts, event, who, direction, before, after, reason,
                  json.dumps(message, ensure_ascii=False) if message is not None else None, negotiation_id))


def steps(conn, negotiation_id: str) -> list[Step]:
    return [Step(n, ts, ev, who, d, b, a, reason, json.loads(m) if m else None)
            for n, ts, ev, who, d, b, a, reason, m in conn.execute(
                "SELECT n, ts, event, who, direction, state_before, state_after, reason, message FROM contract_step "
                "WHERE negotiation_id = ? ORDER BY n", (negotiation_id,))]


def save_agreement(conn, negotiation_id: str, space_id: str, agreement: dict, provider_sig: dict, ts: str) -> None:
    conn.execute("INSERT INTO contract_agreement (id, negotiation_id, space_id, agreement, provider_sig, status, "
                 "updated) VALUES (?, ?, ?, ?, ?, 'agreed', ?)",
                 (agreement["@id"], negotiation_id, space_id, json.dumps(agreement, ensure_ascii=False),
                  json.dumps(provider_sig), ts))


def agreement(conn, negotiation_id: str) -> dict | None:
    r = conn.execute("SELECT agreement, provider_sig, consumer_sig, status FROM contract_agreement "
                     "WHERE negotiation_id = ?", (negotiation_id,)).fetchone()
    if r is None:
        return None
    return {"agreement": json.loads(r[0]), "provider_signature": json.loads(r[1]),
            "consumer_signature": json.loads(r[2]) if r[2] else None, "status": r[3]}


def set_agreement(conn, negotiation_id: str, ts: str, *, status: str, consumer_sig: dict | None = None) -> None:
    conn.execute("UPDATE contract_agreement SET status = ?, consumer_sig = COALESCE(?, consumer_sig), updated = ? "
                 "WHERE negotiation_id = ?",
                 (status, json.dumps(consumer_sig) if consumer_sig else None, ts, negotiation_id))
