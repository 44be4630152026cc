"""The governance client: what the node honours from its space operator.

The signed revocation list (messages from revoked nodes are dropped by the sync sender filter and
their catalog entries hidden; if this node is revoked its space becomes "revoked"), the space's
standard templates, the operator's listing approvals (a cached catalog entry is shown only with a
valid one), witnessed evidence checkpoints (kept, and checked by ``dsnode evidence verify``) and
contract filing receipts.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from typing import TypeGuard

from appliance.crypto import checkpoint as notes
from appliance.crypto.keys import public_key_from_did
from appliance.crypto.statement import entry_sha256
from appliance.domain.membership import (
    Action, AgreementFiled, CheckpointWitnessed, MessageType, RevokedInSpace, revoked_dids,
)
from appliance.services.membership.statements import (
    check_filing_receipt, check_listing_approval, check_revocation_list,
)
from appliance.domain.sync import SyncStateChanged
from appliance.errors import ApplianceError, LocalText, MalformedMessage
from appliance.services.evidence_audit import note_verifiers
from appliance.services.membership.base import MembershipBase, _body

log = logging.getLogger("appliance.services.membership")


class RevocationRegistry:
    """The latest verified revocation list of each space, in memory, for the sync sender filter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._revoked: dict[str, frozenset[str]] = {}

    def set(self, space_id: str, statement: dict) -> None:
        with self._lock:
            self._revoked[space_id] = frozenset(revoked_dids(statement))

    def is_revoked(self, space_id: str, did: str | None) -> bool:
        with self._lock:
            return did is not None and did in self._revoked.get(space_id, ())

    def accept(self, space_id: str, sender_did: str) -> bool:
        """The sync sender filter: messages from revoked senders are dropped."""
        return not self.is_revoked(space_id, sender_did)


class GovernanceClient(MembershipBase):
    def attach_governance(self, sync) -> None:
        sync.on(str(MessageType.CONSISTENCY_REQUEST), self._on_consistency_request)
        sync.on(str(MessageType.WITNESSED), self._on_witnessed)
        sync.on(str(MessageType.CONTRACT_FILED), self._on_filed)
        sync.on_topic("operator/revocations", self._on_revocations)
        sync.on_topic("operator/templates/+", self._on_template)
        sync.set_sender_filter(self.revocations.accept)
        if hasattr(sync, "set_catalog_filter"):
            sync.set_catalog_filter(self.catalog_visible)
        self._load_revocations()

    # --- revocations and templates ------------------------------------------------------------

    def _on_revocations(self, conn, msg) -> None:
        space = self._space(msg.space_id)
        if space is None or space.status not in ("member", "revoked", "joining") or msg.envelope is None:
            return
        statement = check_revocation_list(msg.body, space_id=space.space_id, operator_did=space.operator_did)
        row = conn.execute("SELECT seq FROM membership_revocation WHERE space_id = ?", (space.space_id,)).fetchone()
        if row is not None and row[0] >= statement["seq"]:
            return
        conn.execute("INSERT INTO membership_revocation (space_id, seq, statement, updated) VALUES (?, ?, ?, ?) "
                     "ON CONFLICT (space_id) DO UPDATE SET seq = excluded.seq, statement = excluded.statement, "
                     "updated = excluded.updated",
                     (space.space_id, statement["seq"], json.dumps(statement), self._now()))
        self.revocations.set(space.space_id, statement)
        mine = [r for r in statement["revoked"] if r["did"] == self.did]
        if mine and space.status != "revoked":
            self._sync.update_space(conn, space.space_id, status="revoked")
            self._evidence.append(conn, action=str(Action.SPACE_REVOKED), subject=f"urn:dsnode:space:{space.space_id}",
                                  payload={"reason": mine[0]["reason"], "list": statement["seq"]})
            self._emit_after_commit(RevokedInSpace(space.space_id, mine[0]["reason"]))

    def _load_revocations(self) -> None:
        rows = self._db.read(lambda c: c.execute("SELECT space_id, statement FROM membership_revocation").fetchall())
        for space_id, statement in rows:
            self.revocations.set(space_id, json.loads(statement))

    def catalog_visible(self, space_id: str, provider: str, dataset_id: str, body: object) -> bool:
        """Whether a cached catalog entry may be shown: provider not revoked, operator approval valid."""
        if self.revocations.is_revoked(space_id, provider):
            return False
        space = self._space(space_id)
        if space is None or not isinstance(body, dict):
            return False
        try:
            check_listing_approval(body.get("approval"), space_id=space_id, operator_did=space.operator_did,
                                   provider=provider, dataset_id=dataset_id, entry=body.get("entry"))
        except ApplianceError:
            return False
        return True

    def _on_template(self, conn, msg) -> None:
        space = self._space(msg.space_id)
        if space is None or msg.envelope is None or msg.sender != space.operator_did or not isinstance(msg.body, dict):
            return
        template_id = msg.topic.rsplit("/", 1)[-1]
        conn.execute("INSERT INTO membership_template (space_id, template_id, template, updated) VALUES (?, ?, ?, ?) "
                     "ON CONFLICT (space_id, template_id) DO UPDATE SET template = excluded.template, "
                     "updated = excluded.updated",
                     (msg.space_id, template_id, json.dumps(msg.body, ensure_ascii=False), self._now()))

    def templates(self, space_id: str) -> dict[str, dict]:
        rows = self._db.read(lambda c: c.execute(
            "SELECT template_id, template FROM membership_template WHERE space_id = ? ORDER BY template_id",
            (space_id,)).fetchall())
        return {t: json.loads(body) for t, body in rows}

    # --- evidence: checkpoints and the operator's witness -------------------------------------

    def publish_checkpoint(self) -> int:
        """Sign a checkpoint and publish it (retained) to every space this node is a member of."""
        def work(conn) -> int:
            spaces = [s.space_id for s in self._sync.spaces() if s.status == "member"]
            for space_id in spaces:
                self._publish_checkpoint_in(conn, space_id)
            return len(spaces)

        return self._db.write(work)

    def _publish_checkpoint_in(self, conn, space_id: str) -> None:
        self._evidence.checkpoint()  # joins the caller's transaction (same owner thread)
        row = conn.execute("SELECT size, note FROM evidence_checkpoint ORDER BY size DESC LIMIT 1").fetchone()
        with self._lock:
            self._published[space_id] = row[0]
        self._sync.publish(conn, space_id, topic=f"evidence/{self.did}", type=str(MessageType.CHECKPOINT),
                           body={"size": row[0], "note": row[1],
                                 "keys": [r.to_json() for r in self._identity.key_records()]}, retained=True)

    def _on_link_state(self, event: SyncStateChanged) -> None:
        """On (re)connecting to a space, publish our latest checkpoint there if it grew since."""
        if event.state != "connected":
            return
        space = self._space(event.space_id)
        latest = self._evidence.latest_checkpoint()
        size = self._evidence.size()
        with self._lock:
            published = self._published.get(event.space_id)
        if space is None or space.status != "member" or (published is not None and published >= size
                                                          and latest is not None and latest.size >= size):
            return
        try:
            self._db.write(lambda c: self._publish_checkpoint_in(c, event.space_id))
        except ApplianceError as e:
            log.warning("could not publish the evidence checkpoint to %s: %s", event.space_id, e.message("en"))

    def _on_consistency_request(self, conn, msg) -> None:
        space = self._from_operator(conn, msg)
        if space is None:
            return
        body = _body(msg)
        old, new = body.get("old_size"), body.get("new_size")
        size = conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM evidence_entry").fetchone()[0]
        if not (_whole(old) and _whole(new)) or not 0 < old <= new <= size:
            raise MalformedMessage(LocalText("membership.reason.consistency_sizes"))
        proof = self._evidence.consistency_proof(old, new)
        self._sync.send(conn, space.space_id, to=space.operator_did, type=str(MessageType.CONSISTENCY_PROOF),
                        body={"old_size": old, "new_size": new,
                              "proof": [base64.b64encode(h).decode("ascii") for h in proof]})

    def _on_witnessed(self, conn, msg) -> None:
        space = self._from_operator(conn, msg, ("member", "revoked"))
        body = _body(msg)
        if space is None or body.get("node") != self.did or not isinstance(body.get("note"), str):
            return
        note = body["note"]
        verifiers = note_verifiers(self.did, self._identity.key_records())
        operator_key = public_key_from_did(space.operator_did)
        verifiers[(space.operator_did, notes.key_id(space.operator_did, operator_key))] = operator_key
        checkpoint, signers = notes.open_checkpoint(note, verifiers)
        if space.operator_did not in signers or self.did not in signers:
            raise MalformedMessage(LocalText("membership.reason.witness_unsigned"))
        inserted = conn.execute("INSERT OR IGNORE INTO witnessed_checkpoint (space_id, size, note, received) "
                                "VALUES (?, ?, ?, ?)", (space.space_id, checkpoint.size, note, self._now())).rowcount
        if inserted:
            self._emit_after_commit(CheckpointWitnessed(space.space_id, checkpoint.size))

    def witnessed_notes(self) -> list[str]:
        """Every checkpoint of this node's log that a space operator co-signed."""
        return [n for (n,) in self._db.read(lambda c: c.execute(
            "SELECT note FROM witnessed_checkpoint ORDER BY space_id, size").fetchall())]

    def witnessed(self, space_id: str) -> list[tuple[int, str]]:
        return self._db.read(lambda c: c.execute(
            "SELECT size, received FROM witnessed_checkpoint WHERE space_id = ? ORDER BY size", (space_id,)).fetchall())

    # --- contract filing ----------------------------------------------------------------------

    def file_agreement(self, conn, space_id: str, agreement: dict) -> str:
        """File a signed agreement with the operator of ``space_id`` (inside the caller's transaction)."""
        space = self._require(space_id)
        digest = entry_sha256(agreement)
        conn.execute("INSERT OR IGNORE INTO membership_filing (space_id, agreement_sha256, sent) VALUES (?, ?, ?)",
                     (space_id, digest, self._now()))
        return self._sync.send(conn, space_id, to=space.operator_did, type=str(MessageType.CONTRACT_FILE),
                               body={"agreement": agreement})

    def file_retirement(self, conn, space_id: str, agreement_sha256: str, notice: dict) -> str | None:
        """Tell the operator a filed agreement was retired (inside the caller's transaction)."""
        space = self._space(space_id)
        if space is None or space.status != "member":
            return None  # not a member any more: nothing to update at the operator
        return self._sync.send(conn, space_id, to=space.operator_did, type=str(MessageType.CONTRACT_RETIRED),
                               body={"agreement_sha256": agreement_sha256, "statement": notice["statement"],
                                     "signature": notice["signature"]})

    def filing_receipt(self, space_id: str, agreement_sha256: str) -> dict | None:
        row = self._db.read(lambda c: c.execute(
            "SELECT receipt FROM membership_filing WHERE space_id = ? AND agreement_sha256 = ?",
            (space_id, agreement_sha256)).fetchone())
        return json.loads(row[0]) if row and row[0] else None

    def _on_filed(self, conn, msg) -> None:
        space = self._from_operator(conn, msg, ("member", "revoked"))
        if space is None:
            return
        body = _body(msg)
        digest = body.get("agreement_sha256")
        receipt = body.get("receipt")
        if not isinstance(digest, str):
            raise MalformedMessage(LocalText("membership.reason.receipt_no_agreement"))
        receipt = check_filing_receipt(receipt, space_id=space.space_id, operator_did=space.operator_did,
                                       agreement_sha256=digest)  # the same dict, verified
        if receipt["filed_by"] != self.did:
            raise MalformedMessage(LocalText("membership.reason.receipt_other_node"))
        changed = conn.execute("UPDATE membership_filing SET receipt = ?, filed = ? WHERE space_id = ? AND "
                               "agreement_sha256 = ? AND receipt IS NULL",
                               (json.dumps(receipt), receipt["filedAt"], space.space_id, digest)).rowcount
        if changed:
            self._evidence.append(conn, action=str(Action.AGREEMENT_FILED), subject=f"urn:sha256:{digest}",
                                  payload={"space": space.space_id, "receipt": receipt})
            self._emit_after_commit(AgreementFiled(space.space_id, digest))


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
