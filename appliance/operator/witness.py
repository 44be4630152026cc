"""The operator as witness of every member's evidence log.

Each member publishes its latest signed checkpoint, retained, on ``evidence/{did}``. The operator
keeps the latest one it accepted per node. A checkpoint of the same size must have the same root;
a bigger one is accepted only after the node answers a ``dsnode.evidence.consistency_request`` with
an RFC 6962 consistency proof that verifies. Accepted checkpoints are co-signed (a second signature
line on the signed note), published retained on ``operator/witness/{did}`` and sent back to the
node, which keeps them so ``dsnode evidence verify`` checks them too. A node whose log was
rewritten or shrank raises an alert: a row, an operator evidence entry and a log line.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass

from appliance.crypto import checkpoint as notes
from appliance.crypto import merkle
from appliance.crypto.keys import public_key_from_did
from appliance.crypto.key_chain import KeyRecord, verify_key_chain
from appliance.domain.membership import Action, MessageType
from appliance.errors import ApplianceError, LocalText, MalformedMessage
from appliance.operator.admission import is_member
from appliance.operator.space import OperatorContext
from appliance.services.evidence import origin_for
from appliance.services.evidence_audit import note_verifiers

log = logging.getLogger(__name__)

MAX_PROOF = 64


@dataclass(frozen=True)
class Alert:
    id: int
    node_did: str
    kind: str
    detail: str
    evidence: dict
    raised: str


@dataclass(frozen=True)
class AlertRaised:
    """Event: a member's evidence log no longer matches what the operator witnessed."""

    node_did: str
    kind: str
    detail: str


def open_node_checkpoint(did: str, note: str, keys: object) -> notes.Checkpoint:
    """Verify ``note`` as a checkpoint of ``did``'s log, signed by a key of its (verified) key chain."""
    records = _key_records(did, keys)
    checkpoint, _ = notes.open_checkpoint(note, note_verifiers(did, records))
    if checkpoint.origin != origin_for(did):
        raise MalformedMessage(LocalText("operator.reason.other_log", checkpoint.origin))
    return checkpoint


def _key_records(did: str, keys: object) -> list[KeyRecord]:
    if not keys:
        return [KeyRecord(0, did, public_key_from_did(did), "")]
    if not isinstance(keys, list) or len(keys) > 1000:
        raise MalformedMessage(LocalText("operator.reason.chain_not_list"))
    try:
        records = [KeyRecord.from_json(k) for k in keys]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise MalformedMessage(LocalText("operator.reason.chain_unreadable")) from None
    verify_key_chain(did, records)
    return records


def handle_checkpoint(ctx: OperatorContext, conn, msg) -> None:
    """A member's retained checkpoint arrived."""
    did = msg.sender
    body = msg.body if isinstance(msg.body, dict) else {}
    if not is_member(conn, did) or not isinstance(body.get("note"), str):
        return
    note = body["note"]
    checkpoint = open_node_checkpoint(did, note, body.get("keys"))
    row = conn.execute("SELECT size, root, note FROM operator_witness WHERE node_did = ?", (did,)).fetchone()
    if row is None:
        _accept(ctx, conn, did, checkpoint, note, body.get("keys"))
        return
    size, root, old_note = row[0], bytes(row[1]), row[2]
    if checkpoint.size == size:
        if checkpoint.root_hash != root:
            raise_alert(ctx, conn, did, "rewritten", f"two different logs of size {size}",
                        {"witnessed": old_note, "presented": note})
        return
    if checkpoint.size < size:
        raise_alert(ctx, conn, did, "shrunk", f"the log went from {size} to {checkpoint.size} entries",
                    {"witnessed": old_note, "presented": note})
        return
    conn.execute("UPDATE operator_witness SET pending_note = ?, keys = ?, updated = ? WHERE node_did = ?",
                 (note, json.dumps(body.get("keys")), ctx.now(), did))
    ctx.sync.send(conn, ctx.space(conn).space_id, to=did, type=str(MessageType.CONSISTENCY_REQUEST),
                  body={"old_size": size, "new_size": checkpoint.size})


def handle_proof(ctx: OperatorContext, conn, msg) -> None:
    """The node's answer to a consistency request."""
    did = msg.sender
    body = msg.body if isinstance(msg.body, dict) else {}
    row = conn.execute("SELECT size, root, note, pending_note, keys FROM operator_witness WHERE node_did = ?",
                       (did,)).fetchone()
    if row is None or row[3] is None:
        return
    size, root, old_note, pending, keys = row[0], bytes(row[1]), row[2], row[3], json.loads(row[4] or "null")
    checkpoint = open_node_checkpoint(did, pending, keys)
    if body.get("old_size") != size or body.get("new_size") != checkpoint.size:
        return  # an answer to an older request; a newer one is on its way
    try:
        proof = _proof(body.get("proof"))
        merkle.verify_consistency(checkpoint.size, size, checkpoint.root_hash, root, proof)
    except (ApplianceError, ValueError) as e:
        conn.execute("UPDATE operator_witness SET pending_note = NULL WHERE node_did = ?", (did,))
        raise_alert(ctx, conn, did, "rewritten",
                    f"the log of size {checkpoint.size} does not extend the witnessed log of size {size} ({e})",
                    {"witnessed": old_note, "presented": pending, "proof": body.get("proof")})
        return
    _accept(ctx, conn, did, checkpoint, pending, keys)


def _proof(value: object) -> list[bytes]:
    if not isinstance(value, list) or len(value) > MAX_PROOF or not all(isinstance(h, str) for h in value):
        raise MalformedMessage(LocalText("operator.reason.proof_not_hashes"))
    return [base64.b64decode(h, validate=True) for h in value]


def _accept(ctx: OperatorContext, conn, did: str, checkpoint: notes.Checkpoint, note: str, keys) -> None:
    cosigned = notes.add_signature(note, ctx.did, ctx.key().seed)
    conn.execute(
        "INSERT INTO operator_witness (node_did, size, root, note, cosigned, keys, pending_note, updated) "
        "VALUES (?, ?, ?, ?, ?, ?, NULL, ?) ON CONFLICT (node_did) DO UPDATE SET size = excluded.size, "
        "root = excluded.root, note = excluded.note, cosigned = excluded.cosigned, keys = excluded.keys, "
        "pending_note = NULL, updated = excluded.updated",
        (did, checkpoint.size, checkpoint.root_hash, note, cosigned, json.dumps(keys), ctx.now()))
    space_id = ctx.space(conn).space_id
    body = {"node": did, "size": checkpoint.size, "note": cosigned}
    ctx.sync.publish(conn, space_id, topic=f"operator/witness/{did}", type=str(MessageType.WITNESSED), body=body,
                     retained=True)
    ctx.sync.send(conn, space_id, to=did, type=str(MessageType.WITNESSED), body=body)
    ctx.record(conn, Action.OPERATOR_WITNESSED, did, {"size": checkpoint.size,
                                                      "root": base64.b64encode(checkpoint.root_hash).decode()})


def raise_alert(ctx: OperatorContext, conn, did: str, kind: str, detail: str, evidence: dict) -> None:
    log.warning("evidence alert for %s: %s", did, detail)
    conn.execute("INSERT INTO operator_alert (node_did, kind, detail, evidence, raised) VALUES (?, ?, ?, ?, ?)",
                 (did, kind, detail, json.dumps(evidence, ensure_ascii=False), ctx.now()))
    ctx.record(conn, Action.OPERATOR_ALERT, did, {"kind": kind, "detail": detail})
    alert = AlertRaised(did, kind, detail)
    ctx.db.after_commit(lambda: ctx.bus.emit(alert))


def alerts(ctx: OperatorContext) -> list[Alert]:
    rows = ctx.db.read(lambda c: c.execute(
        "SELECT id, node_did, kind, detail, evidence, raised FROM operator_alert ORDER BY id").fetchall())
    return [Alert(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows]


def witnessed(ctx: OperatorContext) -> dict[str, tuple[int, str]]:
    """node did → (size, co-signed note) of the latest checkpoint witnessed."""
    rows = ctx.db.read(lambda c: c.execute("SELECT node_did, size, cosigned FROM operator_witness").fetchall())
    return {d: (s, n) for d, s, n in rows}
