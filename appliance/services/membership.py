"""Membership of data spaces, on the node side (``node.membership``).

Joining: the node reads an invitation, verifies it, adds the space to sync as "joining" with the
invitation's one-time join account, and sends its join request (sealed to the operator) in the
same transaction. The operator's answer arrives on the join reply topic: admitted (credential
and broker account: the space becomes "member"), pending (manual review), or rejected.

Governance it honours: the operator's signed revocation list (messages from revoked nodes are
dropped by the sync sender filter and their catalog entries hidden; if this node is revoked its
space becomes "revoked"), listing review (an entry is published to the space catalog only with
the operator's approval attached), witnessed evidence checkpoints (kept, and checked by
``dsnode evidence verify``), contract filing receipts and the space's standard templates.
"""

from __future__ import annotations

import base64
import json
import logging
import threading

from appliance.clock import Clock, rfc3339
from appliance.crypto import checkpoint as notes
from appliance.crypto.keys import public_key_from_did
from appliance.domain.membership import (  # events and rows of the membership protocol
    JoinPending, SpaceJoined, JoinRejected, RevokedInSpace, ListingDecided, CheckpointWitnessed, AgreementFiled, Listing,
)
from appliance.domain.membership import (
    Action, MessageType, check_credential, check_filing_receipt, check_listing_approval, check_revocation_list,
    entry_sha256, revoked_dids,
)
from appliance.domain.sync import SpaceConfig, SyncStateChanged
from appliance.errors import AlreadyInSpace, ApplianceError, MalformedMessage, MemberRevoked, NotInSpace
from appliance.events import EventBus
from appliance.operator.invitation import Invitation, load_invitation
from appliance.services.evidence_audit import note_verifiers

log = logging.getLogger(__name__)

CATALOG_ENTRY = "dsnode.catalog.entry"


# --- events ----------------------------------------------------------------------------------


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


class MembershipService:
    def __init__(self, db, keyring, identity, evidence, clock: Clock, bus: EventBus, sync,
                 revocations: RevocationRegistry) -> None:
        self._db = db
        self._keys = keyring
        self._identity = identity
        self._evidence = evidence
        self._clock = clock
        self._bus = bus
        self._sync = sync
        self.revocations = revocations
        self._lock = threading.Lock()
        self._published: dict[str, int] = {}  # space → size of the checkpoint last published there
        self._products = None
        bus.subscribe(self._on_link_state, SyncStateChanged)

    @property
    def did(self) -> str:
        return self._keys.node_did

    def _now(self) -> str:
        return rfc3339(self._clock.now())

    # --- joining and leaving ------------------------------------------------------------------

    def read_invitation(self, code_or_file: str) -> Invitation:
        """Read and verify an invitation (signature, dates) without acting on it."""
        return load_invitation(code_or_file, now=self._clock.now())

    def join(self, code_or_file: str) -> Invitation:
        """Join the space of an invitation: the request goes out as soon as sync connects."""
        invitation = self.read_invitation(code_or_file)
        space_id = invitation.space_id

        def work(conn) -> None:
            existing = self._space(space_id)
            config = SpaceConfig(
                space_id=space_id, name=invitation.space_name, operator_did=invitation.operator_did,
                broker_host=invitation.broker_host, broker_port=invitation.broker_port,
                tls_ca_pem=invitation.tls_ca_pem, username=invitation.join_username,
                password=invitation.join_password, status="joining", credential=None)
            if existing is None:
                self._sync.add_space(conn, config)
            elif existing.status in ("joining", "member", "operator"):
                raise AlreadyInSpace(space_id, existing.status, space_id)
            else:
                self._sync.update_space(conn, space_id, name=config.name, operator_did=config.operator_did,
                                        broker_host=config.broker_host, broker_port=config.broker_port,
                                        tls_ca_pem=config.tls_ca_pem, username=config.username,
                                        password=config.password, status="joining", credential=None)
            body = {"token_id": invitation.token_id, "token_secret": invitation.token_secret,
                    "name": self._identity.name, "org": self._identity.org, "card": self._card()}
            self._sync.send(conn, space_id, to=invitation.operator_did, type=str(MessageType.JOIN_REQUEST), body=body,
                            topic=f"operator/join/{invitation.token_id}")
            self._evidence.append(conn, action=str(Action.SPACE_JOIN_REQUESTED), subject=f"urn:dsnode:space:{space_id}",
                                  payload={"operator": invitation.operator_did, "token": invitation.token_id})

        self._db.write(work)
        return invitation

    def leave(self, space_id: str) -> None:
        """Leave a space: tell the operator, clear our retained catalog entries, stop syncing it."""
        def work(conn) -> None:
            space = self._require(space_id, ("member", "joining", "revoked"))
            if space.status == "member":
                self._sync.send(conn, space_id, to=space.operator_did, type=str(MessageType.LEAVE), body={})
                for (dataset_id,) in conn.execute("SELECT dataset_id FROM membership_listing WHERE space_id = ? "
                                                  "AND status = 'approved'", (space_id,)).fetchall():
                    self._clear_entry(conn, space_id, dataset_id, "withdrawn")
            self._sync.update_space(conn, space_id, status="left")
            self._evidence.append(conn, action=str(Action.SPACE_LEFT), subject=f"urn:dsnode:space:{space_id}")

        self._db.write(work)

    def _card(self) -> dict:
        return {"did": self.did, "name": self._identity.name, "org": self._identity.org,
                "keys": [r.to_json() for r in self._identity.key_records()]}

    def _space(self, space_id: str) -> SpaceConfig | None:
        return next((s for s in self._sync.spaces() if s.space_id == space_id), None)

    def _require(self, space_id: str, statuses: tuple[str, ...] = ("member",)) -> SpaceConfig:
        space = self._space(space_id)
        if space is not None and space.status == "revoked" and "revoked" not in statuses:
            raise MemberRevoked(space_id)
        if space is None or space.status not in statuses:
            raise NotInSpace(space_id)
        return space

    # --- handlers: the operator's answers -----------------------------------------------------

    def attach(self, sync) -> None:
        """Register the member-side handlers and filters on the sync service (before it starts)."""
        sync.on(str(MessageType.ADMITTED), self._on_admitted)
        sync.on(str(MessageType.REJECTED), self._on_rejected)
        sync.on(str(MessageType.JOIN_PENDING), self._on_pending)
        sync.on(str(MessageType.LISTING_APPROVED), self._on_listing_approved)
        sync.on(str(MessageType.LISTING_REJECTED), self._on_listing_rejected)
        sync.on(str(MessageType.CONSISTENCY_REQUEST), self._on_consistency_request)
        sync.on(str(MessageType.WITNESSED), self._on_witnessed)
        sync.on(str(MessageType.CONTRACT_FILED), self._on_filed)
        sync.on_topic("operator/revocations", self._on_revocations)
        sync.on_topic("operator/templates/+", self._on_template)
        sync.set_sender_filter(self.revocations.accept)
        if hasattr(sync, "set_catalog_filter"):
            sync.set_catalog_filter(self.catalog_visible)
        self._load_revocations()

    def _from_operator(self, conn, msg, statuses=("member",)) -> SpaceConfig | None:
        space = self._space(msg.space_id)
        if space is None or space.status not in statuses or msg.envelope is None or msg.sender != space.operator_did:
            return None
        return space

    def _on_admitted(self, conn, msg) -> None:
        space = self._from_operator(conn, msg, ("joining",))
        if space is None:
            return
        body = _body(msg)
        credential = body.get("credential")
        check_credential(credential, operator_did=space.operator_did, space_id=space.space_id, node_did=self.did,
                         now=self._clock.now())
        if not isinstance(body.get("username"), str) or not isinstance(body.get("password"), str):
            raise MalformedMessage("the admission carries no broker account")
        self._sync.update_space(conn, space.space_id, username=body["username"], password=body["password"],
                                status="member", credential=credential)
        self._evidence.append(conn, action=str(Action.SPACE_JOINED), subject=f"urn:dsnode:space:{space.space_id}",
                              payload={"operator": space.operator_did, "credential": credential.get("id")})
        # our checkpoint goes out when sync reconnects with the member account (_on_link_state)
        self._emit_after_commit(SpaceJoined(space.space_id, str(credential.get("id"))))

    def _on_rejected(self, conn, msg) -> None:
        space = self._from_operator(conn, msg, ("joining",))
        if space is None:
            return
        reason = str(_body(msg).get("reason") or "")[:500]
        self._sync.update_space(conn, space.space_id, status="left")
        self._evidence.append(conn, action=str(Action.SPACE_JOIN_REJECTED),
                              subject=f"urn:dsnode:space:{space.space_id}", payload={"reason": reason})
        self._emit_after_commit(JoinRejected(space.space_id, reason))

    def _on_pending(self, conn, msg) -> None:
        if self._from_operator(conn, msg, ("joining",)) is not None:
            self._emit_after_commit(JoinPending(msg.space_id))

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

    # --- listings -----------------------------------------------------------------------------

    def is_member(self, space_id: str) -> bool:
        space = self._space(space_id)
        return space is not None and space.status == "member"

    def _emit_after_commit(self, event: object) -> None:
        """Tell the adapters once the handler's transaction has committed, never before."""
        self._db.after_commit(lambda: self._bus.emit(event))

    def connect_products(self, products) -> None:
        """Serve the catalog's listing requests: its events go to the operator, answers come back."""
        from appliance.domain.product import ListingRequested, ListingWithdrawn

        self._products = products
        products.set_membership(self.is_member)
        self._bus.subscribe(self._on_product_listing, ListingRequested)
        self._bus.subscribe(self._on_product_withdrawn, ListingWithdrawn)

    def _on_product_listing(self, event) -> None:
        if not self.is_member(event.space_id):
            log.info("listing request for %s waits: not a member of that space", event.space_id)
            return
        dataset = event.dataset
        self.request_listing(event.space_id, event.product_id, dataset, version=event.version,
                             pricing=dataset.get("hasPolicy"), compliance=dataset.get("dsnode:compliance"))

    def _on_product_withdrawn(self, event) -> None:
        if self.is_member(event.space_id):
            self.withdraw_listing(event.space_id, event.product_id)

    def _tell_products(self, space_id: str, dataset_id: str, version: int | None, status: str,
                       reason: str = "") -> None:
        if self._products is None or version is None:
            return
        try:
            self._products.mark_listing(dataset_id, space_id, status, reason, version=version)
        except ApplianceError as e:
            log.warning("the catalog did not take the listing answer for %s: %s", dataset_id, e.message("en"))

    def request_listing(self, space_id: str, dataset_id: str, entry: dict, *, pricing: object = None,
                        compliance: object = None, version: int | None = None, conn=None) -> str:
        """Ask the operator to list ``entry`` (DCAT dataset + ODRL offers) in the space catalog."""
        if not dataset_id or "/" in dataset_id or "+" in dataset_id or "#" in dataset_id:
            raise ValueError(f"dataset id {dataset_id!r} cannot be part of a topic")

        def work(c) -> str:
            space = self._require(space_id)
            c.execute("INSERT INTO membership_listing (space_id, dataset_id, status, entry, version, updated) "
                      "VALUES (?, ?, 'requested', ?, ?, ?) ON CONFLICT (space_id, dataset_id) DO UPDATE SET "
                      "status = 'requested', entry = excluded.entry, version = excluded.version, approval = NULL, "
                      "reason = NULL, updated = excluded.updated",
                      (space_id, dataset_id, json.dumps(entry, ensure_ascii=False), version, self._now()))
            self._evidence.append(c, action=str(Action.LISTING_REQUESTED), subject=dataset_id,
                                  payload={"space": space_id, "entry_sha256": entry_sha256(entry)})
            return self._sync.send(c, space_id, to=space.operator_did, type=str(MessageType.LISTING_REQUEST),
                                   body={"dataset_id": dataset_id, "entry": entry, "pricing": pricing,
                                         "compliance": compliance})

        return work(conn) if conn is not None else self._db.write(work)

    def withdraw_listing(self, space_id: str, dataset_id: str, *, conn=None) -> None:
        """Take a dataset out of the space catalog (the retained entry is cleared)."""
        def work(c) -> None:
            space = self._require(space_id)
            self._clear_entry(c, space_id, dataset_id, "withdrawn")
            self._sync.send(c, space_id, to=space.operator_did, type=str(MessageType.LISTING_WITHDRAWN),
                            body={"dataset_id": dataset_id})
            self._evidence.append(c, action=str(Action.LISTING_WITHDRAWN), subject=dataset_id,
                                  payload={"space": space_id})

        work(conn) if conn is not None else self._db.write(work)

    def _clear_entry(self, conn, space_id: str, dataset_id: str, status: str) -> None:
        conn.execute("UPDATE membership_listing SET status = ?, updated = ? WHERE space_id = ? AND dataset_id = ?",
                     (status, self._now(), space_id, dataset_id))
        self._sync.publish(conn, space_id, topic=f"catalog/{self.did}/{dataset_id}", type=CATALOG_ENTRY, body=None,
                           retained=True)

    def listings(self, space_id: str | None = None) -> list[Listing]:
        sql = "SELECT space_id, dataset_id, status, reason, approval FROM membership_listing"
        args: tuple = ()
        if space_id:
            sql, args = sql + " WHERE space_id = ?", (space_id,)
        rows = self._db.read(lambda c: c.execute(sql + " ORDER BY space_id, dataset_id", args).fetchall())
        return [Listing(s, d, st, r, json.loads(a) if a else None) for s, d, st, r, a in rows]

    def _on_listing_approved(self, conn, msg) -> None:
        space = self._from_operator(conn, msg)
        if space is None:
            return
        body = _body(msg)
        dataset_id = str(body.get("dataset_id"))
        row = conn.execute("SELECT entry, status, version FROM membership_listing "
                           "WHERE space_id = ? AND dataset_id = ?", (space.space_id, dataset_id)).fetchone()
        if row is None or row[1] != "requested":
            return
        entry, version = json.loads(row[0]), row[2]
        approval = check_listing_approval(body.get("approval"), space_id=space.space_id,
                                          operator_did=space.operator_did, provider=self.did, dataset_id=dataset_id,
                                          entry=entry)
        conn.execute("UPDATE membership_listing SET status = 'approved', approval = ?, updated = ? "
                     "WHERE space_id = ? AND dataset_id = ?",
                     (json.dumps(approval), self._now(), space.space_id, dataset_id))
        self._sync.publish(conn, space.space_id, topic=f"catalog/{self.did}/{dataset_id}", type=CATALOG_ENTRY,
                           body={"dataset_id": dataset_id, "entry": entry, "approval": approval}, retained=True)
        self._evidence.append(conn, action=str(Action.LISTING_APPROVED), subject=dataset_id,
                              payload={"space": space.space_id, "entry_sha256": approval["entry_sha256"]})
        self._tell_products(space.space_id, dataset_id, version, "listed")
        self._emit_after_commit(ListingDecided(space.space_id, dataset_id, True))

    def _on_listing_rejected(self, conn, msg) -> None:
        space = self._from_operator(conn, msg)
        if space is None:
            return
        body = _body(msg)
        dataset_id, reason = str(body.get("dataset_id")), str(body.get("reason") or "")[:500]
        changed = conn.execute("UPDATE membership_listing SET status = 'rejected', reason = ?, updated = ? "
                               "WHERE space_id = ? AND dataset_id = ? AND status = 'requested'",
                               (reason, self._now(), space.space_id, dataset_id)).rowcount
        if changed:
            self._evidence.append(conn, action=str(Action.LISTING_REJECTED), subject=dataset_id,
                                  payload={"space": space.space_id, "reason": reason})
            version = conn.execute("SELECT version FROM membership_listing WHERE space_id = ? AND dataset_id = ?",
                                   (space.space_id, dataset_id)).fetchone()[0]
            self._tell_products(space.space_id, dataset_id, version, "rejected", reason)
            self._emit_after_commit(ListingDecided(space.space_id, dataset_id, False, reason))

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
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (old, new)) or not 0 < old <= new <= size:
            raise MalformedMessage("the consistency request names sizes this log does not have")
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
            raise MalformedMessage("the witnessed checkpoint lacks the node's or the operator's signature")
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
            raise MalformedMessage("the filing receipt names no agreement")
        check_filing_receipt(receipt, space_id=space.space_id, operator_did=space.operator_did, agreement_sha256=digest)
        if receipt["filed_by"] != self.did:
            raise MalformedMessage("the filing receipt is for another node")
        changed = conn.execute("UPDATE membership_filing SET receipt = ?, filed = ? WHERE space_id = ? AND "
                               "agreement_sha256 = ? AND receipt IS NULL",
                               (json.dumps(receipt), receipt["filedAt"], space.space_id, digest)).rowcount
        if changed:
            self._evidence.append(conn, action=str(Action.AGREEMENT_FILED), subject=f"urn:sha256:{digest}",
                                  payload={"space": space.space_id, "receipt": receipt})
            self._emit_after_commit(AgreementFiled(space.space_id, digest))


def _body(msg) -> dict:
    return msg.body if isinstance(msg.body, dict) else {}

