"""Contract filing (备案): members file signed agreements; the operator keeps them and signs a receipt."""

from __future__ import annotations

import json
from dataclasses import dataclass

from appliance.crypto.statement import entry_sha256
from appliance.domain.membership import Action, MessageType
from appliance.services.membership.statements import filing_receipt
from appliance.errors import LocalText, MalformedMessage
from appliance.operator.admission import is_member
from appliance.operator.space import OperatorContext


@dataclass(frozen=True)
class Filing:
    id: int
    agreement_sha256: str
    filed_by: str
    agreement: dict
    receipt: dict
    filed: str
    retired: str | None = None  # when the provider retired the agreement
    retire_reason: str | None = None


def handle_file(ctx: OperatorContext, conn, msg) -> None:
    agreement = msg.body.get("agreement") if isinstance(msg.body, dict) else None
    if not isinstance(agreement, dict):
        raise MalformedMessage(LocalText("operator.reason.filing_no_agreement"))
    if not is_member(conn, msg.sender):
        raise MalformedMessage(LocalText("operator.reason.filing_not_member", msg.sender))
    space = ctx.space(conn)
    digest = entry_sha256(agreement)
    row = conn.execute("SELECT receipt FROM operator_filing WHERE agreement_sha256 = ? AND filed_by = ?",
                       (digest, msg.sender)).fetchone()
    if row:
        receipt = json.loads(row[0])
    else:
        receipt = filing_receipt(ctx.key(), space_id=space.space_id, operator_did=ctx.did, agreement=agreement,
                                 filed_by=msg.sender, filed_at=ctx.now())
        conn.execute("INSERT INTO operator_filing (agreement_sha256, filed_by, agreement, receipt, filed) "
                     "VALUES (?, ?, ?, ?, ?)", (digest, msg.sender, json.dumps(agreement, ensure_ascii=False),
                                                json.dumps(receipt), receipt["filedAt"]))
        ctx.record(conn, Action.OPERATOR_FILED, msg.sender, {"agreement_sha256": digest})
    ctx.sync.send(conn, space.space_id, to=msg.sender, type=str(MessageType.CONTRACT_FILED),
                  body={"agreement_sha256": digest, "receipt": receipt})


def handle_retired(ctx: OperatorContext, conn, msg) -> None:
    """The provider that filed an agreement retired it: note it on the filing (the sender must be
    the member that filed it, so no one else can mark another's agreement retired)."""
    body = msg.body if isinstance(msg.body, dict) else {}
    digest, statement = body.get("agreement_sha256"), body.get("statement")
    if not isinstance(digest, str) or not isinstance(statement, dict):
        raise MalformedMessage(LocalText("operator.reason.retirement_fields"))
    reason = str(statement.get("reason") or "")[:500]
    at = str(statement.get("retiredAt") or ctx.now())
    changed = conn.execute("UPDATE operator_filing SET retired = ?, retire_reason = ? WHERE agreement_sha256 = ? "
                           "AND filed_by = ? AND retired IS NULL", (at, reason, digest, msg.sender)).rowcount
    if changed:
        ctx.record(conn, Action.OPERATOR_FILING_RETIRED, msg.sender, {"agreement_sha256": digest, "reason": reason})


def filings(ctx: OperatorContext) -> list[Filing]:
    rows = ctx.db.read(lambda c: c.execute(
        "SELECT id, agreement_sha256, filed_by, agreement, receipt, filed, retired, retire_reason "
        "FROM operator_filing ORDER BY id").fetchall())
    return [Filing(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), r[5], r[6], r[7]) for r in rows]
