"""Revoking members: a signed, retained revocation list on ``operator/revocations``.

Revocation happens in one transaction: the member row ends, the list gets a new sequence number and
signature, and its publication is queued. The broker account goes on the next reconcile (the
dynamic security plugin disconnects the node at once). Every node honours the list: messages from
a revoked node are dropped and its catalog entries hidden.
"""

from __future__ import annotations

import json

from appliance.domain.membership import Action, MessageType
from appliance.services.membership.statements import revocation_list
from appliance.errors import UnknownMember
from appliance.operator.space import OperatorContext

TOPIC = "operator/revocations"


def revoke(ctx: OperatorContext, did: str, reason: str) -> dict:
    """Revoke member ``did``; returns the new signed revocation list."""
    def work(conn) -> dict:
        row = conn.execute("SELECT status FROM operator_member WHERE did = ?", (did,)).fetchone()
        if row is None or row[0] == "revoked":
            raise UnknownMember(did)
        now = ctx.now()
        conn.execute("UPDATE operator_member SET status = 'revoked', ended = ?, reason = ? WHERE did = ?",
                     (now, reason, did))
        statement = _publish_list(ctx, conn)
        ctx.record(conn, Action.OPERATOR_REVOKED, did, {"reason": reason, "list": statement["seq"]})
        return statement

    return ctx.db.write(work)


def _publish_list(ctx: OperatorContext, conn) -> dict:
    space = ctx.space(conn)
    seq = conn.execute("SELECT revocation_seq FROM operator_space WHERE id = 1").fetchone()[0] + 1
    revoked = [{"did": d, "reason": r or "", "at": at} for d, r, at in conn.execute(
        "SELECT did, reason, ended FROM operator_member WHERE status = 'revoked'")]
    statement = revocation_list(ctx.key(), space_id=space.space_id, operator_did=ctx.did, seq=seq, ts=ctx.now(),
                                revoked=revoked)
    conn.execute("UPDATE operator_space SET revocation_seq = ? WHERE id = 1", (seq,))
    conn.execute("INSERT INTO operator_revocation_list (seq, statement, created) VALUES (?, ?, ?)",
                 (seq, json.dumps(statement, ensure_ascii=False), statement["ts"]))
    ctx.sync.publish(conn, space.space_id, topic=TOPIC, type=str(MessageType.REVOCATIONS), body=statement,
                     retained=True)
    return statement


def current_list(conn) -> dict | None:
    row = conn.execute("SELECT statement FROM operator_revocation_list ORDER BY seq DESC LIMIT 1").fetchone()
    return json.loads(row[0]) if row else None


def publish_initial(ctx: OperatorContext, conn) -> dict:
    """Publish the (empty) first list when the space is created, so nodes always find one."""
    return _publish_list(ctx, conn)


def revoked_set(conn) -> set[str]:
    return {d for (d,) in conn.execute("SELECT did FROM operator_member WHERE status = 'revoked'")}
