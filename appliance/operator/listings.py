"""Listing review (guideline 8.2.4 c–d): providers ask, the operator approves or rejects with a reason.

A ``dsnode.listing.request`` carries the catalog entry (DCAT dataset + ODRL offers), its pricing and
the provider's compliance statement. Approval sends the provider an operator-signed approval over
the SHA-256 of the canonical entry; the provider attaches it to the retained catalog entry it
publishes, and every node shows only entries whose approval verifies. Each request's state follows
the table in ``appliance.domain.listing_review``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from appliance.domain import listing_review as review
from appliance.domain.listing_review import ReviewAction, ReviewEvent, ReviewState
from appliance.domain.membership import Action, MessageType
from appliance.services.membership.statements import listing_approval
from appliance.errors import LocalText, MalformedMessage
from appliance.operator.admission import is_member
from appliance.operator.space import OperatorContext

MAX_DATASET_ID = 200


@dataclass(frozen=True)
class ListingRequest:
    id: int
    provider: str
    dataset_id: str
    entry: dict
    pricing: object
    compliance: object
    status: str
    reason: str | None
    requested: str
    decided: str | None


def handle_request(ctx: OperatorContext, conn, msg) -> int:
    body = msg.body
    if not isinstance(body, dict) or not isinstance(body.get("dataset_id"), str) \
            or not isinstance(body.get("entry"), dict):
        raise MalformedMessage(LocalText("operator.reason.listing_fields"))
    if not body["dataset_id"] or len(body["dataset_id"]) > MAX_DATASET_ID or "/" in body["dataset_id"]:
        raise MalformedMessage(LocalText("operator.reason.listing_bad_id"))
    if not is_member(conn, msg.sender):
        raise MalformedMessage(LocalText("operator.reason.listing_not_member", msg.sender))
    _settle(ctx, conn, msg.sender, body["dataset_id"], ReviewEvent.SUPERSEDE, reason="superseded")
    state, _ = review.step(None, None, ReviewEvent.REQUEST)
    cur = conn.execute(
        "INSERT INTO operator_listing (provider, dataset_id, entry, pricing, compliance, status, requested) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (msg.sender, body["dataset_id"], json.dumps(body["entry"], ensure_ascii=False),
         json.dumps(body.get("pricing"), ensure_ascii=False), json.dumps(body.get("compliance"), ensure_ascii=False),
         str(state), ctx.now()))
    return cur.lastrowid


def handle_withdrawn(ctx: OperatorContext, conn, msg) -> None:
    body = msg.body if isinstance(msg.body, dict) else {}
    _settle(ctx, conn, msg.sender, str(body.get("dataset_id")), ReviewEvent.WITHDRAW)


def _settle(ctx: OperatorContext, conn, provider: str, dataset_id: str, event: ReviewEvent, *,
            reason: str | None = None) -> None:
    """``event`` for each of ``provider``'s requests for ``dataset_id`` that it applies to (the others stay)."""
    now = ctx.now()
    found = conn.execute("SELECT id, status FROM operator_listing WHERE provider = ? AND dataset_id = ? ORDER BY id",
                         (provider, dataset_id)).fetchall()
    for request_id, status in found:
        if review.TRANSITIONS.allows(ReviewState(status), event):
            state, _ = review.step(request_id, ReviewState(status), event)
            conn.execute("UPDATE operator_listing SET status = ?, reason = COALESCE(?, reason), decided = ? "
                         "WHERE id = ?", (str(state), reason, now, request_id))


def requests(ctx: OperatorContext, status: str | None = None) -> list[ListingRequest]:
    sql = ("SELECT id, provider, dataset_id, entry, pricing, compliance, status, reason, requested, decided "
           "FROM operator_listing")
    args: tuple = ()
    if status:
        sql, args = sql + " WHERE status = ?", (status,)
    rows = ctx.db.read(lambda c: c.execute(sql + " ORDER BY id", args).fetchall())
    return [ListingRequest(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4] or "null"), json.loads(r[5] or "null"),
                           *r[6:]) for r in rows]


def approve(ctx: OperatorContext, request_id: int) -> dict:
    def work(conn) -> dict:
        provider, dataset_id, entry, (state, actions) = _decide(conn, request_id, ReviewEvent.APPROVE)
        space = ctx.space(conn)
        approval = listing_approval(ctx.key(), space_id=space.space_id, operator_did=ctx.did, provider=provider,
                                    dataset_id=dataset_id, entry=entry, approved_at=ctx.now())
        conn.execute("UPDATE operator_listing SET status = ?, approval = ?, decided = ? WHERE id = ?",
                     (str(state), json.dumps(approval), ctx.now(), request_id))
        if ReviewAction.SEND_APPROVAL in actions:
            ctx.sync.send(conn, space.space_id, to=provider, type=str(MessageType.LISTING_APPROVED),
                          body={"dataset_id": dataset_id, "approval": approval})
        ctx.record(conn, Action.OPERATOR_LISTING_APPROVED, provider,
                   {"dataset": dataset_id, "entry_sha256": approval["entry_sha256"]})
        return approval

    return ctx.db.write(work)


def reject(ctx: OperatorContext, request_id: int, reason: str) -> None:
    def work(conn) -> None:
        provider, dataset_id, _, (state, actions) = _decide(conn, request_id, ReviewEvent.REJECT)
        space = ctx.space(conn)
        conn.execute("UPDATE operator_listing SET status = ?, reason = ?, decided = ? WHERE id = ?",
                     (str(state), reason, ctx.now(), request_id))
        if ReviewAction.SEND_REJECTION in actions:
            ctx.sync.send(conn, space.space_id, to=provider, type=str(MessageType.LISTING_REJECTED),
                          body={"dataset_id": dataset_id, "reason": reason})
        ctx.record(conn, Action.OPERATOR_LISTING_REJECTED, provider, {"dataset": dataset_id, "reason": reason})

    ctx.db.write(work)


def _decide(conn, request_id: int,
            event: ReviewEvent) -> tuple[str, str, dict, tuple[ReviewState | None, tuple[ReviewAction, ...]]]:
    """The request's provider, dataset and entry, and ``event``'s step (UnknownMember: no such request
    pending)."""
    row = conn.execute("SELECT provider, dataset_id, entry, status FROM operator_listing WHERE id = ?",
                       (request_id,)).fetchone()
    moved = review.step(request_id, ReviewState(row[3]) if row else None, event)
    return row[0], row[1], json.loads(row[2]), moved
