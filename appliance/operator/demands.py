"""Data demands in the space's retained state (供需撮合).

A member sends its demand to the operator (``dsnode.demand.submit``); the operator publishes it
retained on ``operator/demands/<uuid>`` (``dsnode.demand.open``, naming the member that owns it), so
every member, including one that joins later, receives all open demands when it subscribes. A
withdrawal by its owner (``dsnode.demand.close``) or its expiry clears the retained message, which
closes the demand at every member.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from appliance.domain.membership import Action, MessageType
from appliance.errors import LocalText, MalformedMessage
from appliance.operator.admission import is_member
from appliance.operator.space import OperatorContext

DEMAND_ID = re.compile(r"urn:demand:([0-9a-f-]{36})")
TOPIC = "operator/demands/{}"
MAX_FIELD = 2000


@dataclass(frozen=True)
class OperatorDemand:
    id: str
    owner: str
    title: str
    status: str
    expires: str | None


def topic_for(demand_id: object) -> str | None:
    m = DEMAND_ID.fullmatch(demand_id) if isinstance(demand_id, str) else None
    return TOPIC.format(m.group(1)) if m else None


def handle_submit(ctx: OperatorContext, conn, msg) -> None:
    demand = msg.body.get("demand") if isinstance(msg.body, dict) else None
    if not isinstance(demand, dict) or not isinstance(demand.get("title"), str) or topic_for(demand.get("id")) is None:
        raise MalformedMessage(LocalText("operator.reason.demand_fields"))
    if len(json.dumps(demand, ensure_ascii=False)) > 20 * MAX_FIELD:
        raise MalformedMessage(LocalText("operator.reason.demand_too_large"))
    if not is_member(conn, msg.sender):
        raise MalformedMessage(LocalText("operator.reason.demand_not_member", msg.sender))
    topic = topic_for(demand["id"])
    assert topic is not None  # checked above
    expires = demand.get("expires") if isinstance(demand.get("expires"), str) else None
    if expires is not None and expires <= ctx.now():
        return  # already expired: nothing to publish
    inserted = conn.execute("INSERT OR IGNORE INTO operator_demand "
                            "(id, topic, owner, demand, status, expires, updated) VALUES (?, ?, ?, ?, 'open', ?, ?)",
                            (demand["id"], topic, msg.sender, json.dumps(demand, ensure_ascii=False), expires,
                             ctx.now())).rowcount
    if not inserted:
        return  # a redelivered or reused id: the first one stands
    ctx.sync.publish(conn, ctx.space(conn).space_id, topic=topic, type=str(MessageType.DEMAND), retained=True,
                     body={"owner": msg.sender, "demand": demand})
    ctx.record(conn, Action.OPERATOR_DEMAND_PUBLISHED, demand["id"], {"owner": msg.sender, "title": demand["title"]})


def handle_close(ctx: OperatorContext, conn, msg) -> None:
    demand_id = msg.body.get("id") if isinstance(msg.body, dict) else None
    row = conn.execute("SELECT topic, owner, status FROM operator_demand WHERE id = ?", (demand_id,)).fetchone()
    if row is None or row[1] != msg.sender or row[2] != "open":
        return  # not an open demand of the sender
    _close(ctx, conn, str(demand_id), row[0], "withdrawn")


def _close(ctx: OperatorContext, conn, demand_id: str, topic: str, status: str) -> None:
    conn.execute("UPDATE operator_demand SET status = ?, updated = ? WHERE id = ?", (status, ctx.now(), demand_id))
    ctx.sync.publish(conn, ctx.space(conn).space_id, topic=topic, type=str(MessageType.DEMAND), body=None,
                     retained=True)
    ctx.record(conn, Action.OPERATOR_DEMAND_CLOSED, demand_id, {"status": status})


def expire(ctx: OperatorContext) -> int:
    """Clear every open demand whose time is up; returns how many."""
    now = ctx.now()
    due = ctx.db.read(lambda c: c.execute("SELECT 1 FROM operator_demand WHERE status = 'open' AND expires IS NOT NULL "
                                          "AND expires <= ? LIMIT 1", (now,)).fetchone())
    if not due:
        return 0

    def work(conn) -> int:
        rows = conn.execute("SELECT id, topic FROM operator_demand WHERE status = 'open' AND expires IS NOT NULL "
                            "AND expires <= ?", (now,)).fetchall()
        for demand_id, topic in rows:
            _close(ctx, conn, demand_id, topic, "expired")
        return len(rows)

    return ctx.db.write(work)


def demands(ctx: OperatorContext, status: str | None = "open") -> list[OperatorDemand]:
    sql = "SELECT id, owner, demand, status, expires FROM operator_demand"
    args: tuple[str, ...] = ()
    if status:
        sql, args = sql + " WHERE status = ?", (status,)
    rows = ctx.db.read(lambda c: c.execute(sql + " ORDER BY updated, id", args).fetchall())
    return [OperatorDemand(i, o, json.loads(d).get("title", ""), st, e) for i, o, d, st, e in rows]
