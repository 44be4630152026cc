"""Joining a space, on the node side: invitation → join request → admission (credential) or rejection;
leaving; and the operator re-issuing the credential later (a new grade).

The node reads an invitation, verifies it, adds the space to sync as "joining" with the
invitation's one-time join account, and sends its join request (sealed to the operator) in the
same transaction. The operator's answer arrives on the join reply topic: admitted (credential
and broker account: the space becomes "member"), pending (manual review), or rejected.
"""

from __future__ import annotations

from appliance.domain.membership import (
    Action, CredentialUpdated, JoinPending, JoinRejected, MessageType, SpaceJoined, credential_grade,
)
from appliance.services.membership.statements import check_credential
from appliance.domain.sync import SpaceConfig
from appliance.errors import AlreadyInSpace, LocalText, MalformedMessage
from appliance.services.membership.invitation import Invitation, load_invitation
from appliance.services.membership.base import MembershipBase, _body


class JoinFlow(MembershipBase):
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

    # --- the operator's answers ---------------------------------------------------------------

    def attach_join(self, sync) -> None:
        sync.on(str(MessageType.ADMITTED), self._on_admitted)
        sync.on(str(MessageType.REJECTED), self._on_rejected)
        sync.on(str(MessageType.JOIN_PENDING), self._on_pending)
        sync.on(str(MessageType.CREDENTIAL), self._on_credential)

    def grade(self, space_id: str) -> int:
        """This node's member grade in ``space_id``, as its credential says (the lowest without one)."""
        space = self._require(space_id, ("member", "joining", "revoked"))
        return credential_grade((space.credential or {}).get("credentialSubject"))

    def _on_credential(self, conn, msg) -> None:
        """The operator re-issued our credential (e.g. a new grade): keep it and show it in our card."""
        space = self._from_operator(conn, msg)
        if space is None:
            return
        credential = _body(msg).get("credential")
        subject = check_credential(credential, operator_did=space.operator_did, space_id=space.space_id,
                                   node_did=self.did, now=self._clock.now())
        assert isinstance(credential, dict)  # check_credential says so
        grade = credential_grade(subject)
        self._sync.update_space(conn, space.space_id, credential=credential)
        self._sync.queue_card(conn, space.space_id)
        self._evidence.append(conn, action=str(Action.SPACE_CREDENTIAL_UPDATED),
                              subject=f"urn:dsnode:space:{space.space_id}",
                              payload={"credential": credential.get("id"), "grade": grade})
        self._emit_after_commit(CredentialUpdated(space.space_id, str(credential.get("id")), grade))

    def _on_admitted(self, conn, msg) -> None:
        space = self._from_operator(conn, msg, ("joining",))
        if space is None:
            return
        body = _body(msg)
        credential = body.get("credential")
        check_credential(credential, operator_did=space.operator_did, space_id=space.space_id, node_did=self.did,
                         now=self._clock.now())
        assert isinstance(credential, dict)  # check_credential says so
        if not isinstance(body.get("username"), str) or not isinstance(body.get("password"), str):
            raise MalformedMessage(LocalText("membership.reason.admission_no_account"))
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
