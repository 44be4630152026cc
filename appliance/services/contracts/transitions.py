"""A negotiation's steps inside one write transaction, shared by this node's own moves
(``ContractService``) and the messages it receives (``Receiver``, ``retirement.receive``).

Each step is ``step()`` from the state table, the negotiation row, a timeline row, an evidence
entry and the outgoing message (``sync.send`` writes it to the outbox), all in the caller's
transaction; adapters hear of the change only after it commits. A received message that does not
fit is ``refuse``d: the state stays, the refusal and its reason go on the timeline and in evidence.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from appliance.clock import Clock, rfc3339
from appliance.domain.contracts import Action, Negotiation, NegotiationChanged
from appliance.domain.negotiation import FINAL, Event, Role, State, step
from appliance.errors import LocalText
from appliance.events import EventBus
from appliance.services.contracts import agreement as agreements
from appliance.services.contracts import messages, store, terms
from appliance.services.evidence import EvidenceLog
from appliance.services.identity import KeyRing
from appliance.services.membership import MembershipService
from appliance.services.sync import SyncService
from appliance.services.sync.drops import RateLimitedLog
from appliance.storage.database import Database


class Transitions:
    def __init__(self, db: Database, keyring: KeyRing, evidence: EvidenceLog, clock: Clock, bus: EventBus,
                 sync: SyncService, membership: MembershipService, *,
                 step_timeout: timedelta, decision_timeout: timedelta) -> None:
        self.db = db
        self.clock = clock
        self.sync = sync
        self.did: str = keyring.node_did
        self.step_timeout = step_timeout
        self.decision_timeout = decision_timeout
        self._keyring = keyring
        self._evidence = evidence
        self._bus = bus
        self._membership = membership
        self._ratelog = RateLimitedLog()

    def now(self) -> str:
        return rfc3339(self.clock.now())

    def commit(self, conn, n: Negotiation, event: Event, after: State, *, who: str, direction: str,
               reason: str | LocalText = "", message: dict | None = None, pending: bool = False,
               **changes) -> Negotiation:
        """Persist ``n`` moved to ``after`` by ``event``: the row, a timeline step and evidence."""
        reason = str(reason)  # kept in English; a coded reason is shown translated from the message
        moment = self.clock.now()
        now = rfc3339(moment)
        new = replace(n, state=after.value, pending=pending, deadline=self._deadline(after, pending, moment),
                      updated=now, reason=reason if after is State.TERMINATED else n.reason, **changes)
        store.update(conn, new)
        store.add_step(conn, n.id, ts=now, event=event.value, who=who, direction=direction, before=n.state,
                       after=after.value, reason=reason, message=message)
        self.record(conn, action=Action[after.value], subject=n.id, payload={
            "event": event.value, "direction": direction, "peer": n.peer, "space": n.space_id,
            "dataset": n.dataset_id, "role": n.role, "reason": reason})
        self.changed(new)
        return new

    def move(self, conn, n: Negotiation, event: Event, body: dict, *, reason: str | LocalText = "",
             **changes) -> Negotiation:
        """This node sends ``body`` (carrying ``event``): step, persist, evidence and outbox together."""
        after, _ = step(State(n.state), event, Role(n.role) if event is not Event.TERMINATE else None)
        new = self.commit(conn, n, event, after, who=self.did, direction="sent", reason=reason, message=body,
                          **changes)
        self.sync.send(conn, n.space_id, to=n.peer, type=messages.wire_type(body), body=body)
        return new

    def local(self, conn, n: Negotiation, event: Event, reason: str | LocalText, *,
              message: dict | None = None) -> Negotiation:
        """A step no message caused (a timeout); ``message`` is what this node tells the peer about it."""
        after, _ = step(State(n.state), event, None)
        return self.commit(conn, n, event, after, who=self.did, direction="local", reason=reason, message=message)

    def termination(self, n: Negotiation, code: str, reason: str | LocalText) -> dict:
        """A termination naming both pids; before the peer's first answer its pid is the one it will use."""
        peer_pid = n.peer_pid or messages.answer_pid(self.did, n.id, n.peer)
        pids = (n.id, peer_pid) if n.role == Role.CONSUMER else (peer_pid, n.id)
        return messages.termination(*pids, code, reason)

    def terminate_unmet(self, conn, n: Negotiation, failures: list) -> Negotiation:
        """Provider: the request does not meet the offer's constraints; end it naming each one."""
        reason = LocalText("contract.reason.terms_unmet", tuple(failures))
        body = self.termination(n, "constraint_unmet", reason)
        body[terms.FAILURES] = [terms.failure_json(f) for f in failures]
        return self.move(conn, n, Event.TERMINATE, body, reason=reason)

    def agree(self, conn, n: Negotiation) -> Negotiation:
        """Provider: build and sign the agreement from the offer on the table and send it."""
        doc = agreements.build(n.offer, agreement_id=f"urn:uuid:{uuid.uuid4()}", target=n.dataset_id,
                               assigner=self.did, assignee=n.peer, timestamp=self.now())
        signature = self.sign(doc)
        store.save_agreement(conn, n.id, n.space_id, doc, signature, self.now())
        return self.move(conn, n, Event.AGREE, messages.agreement(*n.pids(), doc, signature))

    def sign(self, statement: dict) -> dict:
        """This node's detached signature over ``statement`` (an agreement, a retirement notice)."""
        return agreements.sign(self._keyring.signing_key(), statement)

    def peer_keys(self, did: str) -> tuple[str, ...]:
        """The keys a peer may sign with: its node DID and its current key."""
        return tuple({did, self.sync.keys.current(did)})

    def file_agreement(self, conn, space_id: str, signed: dict) -> None:
        """Provider: file the agreement both sides signed with the space operator (outbox)."""
        if self._membership is not None:
            self._membership.file_agreement(conn, space_id, signed)

    def file_retirement(self, conn, space_id: str, filed_sha256: str, notice: dict) -> None:
        if self._membership is not None:
            self._membership.file_retirement(conn, space_id, filed_sha256, notice)

    def record(self, conn, *, action: Action, subject: str, payload: dict) -> None:
        """An evidence entry in this transaction."""
        self._evidence.append(conn, action=action, subject=subject, payload=payload)

    def changed(self, n: Negotiation) -> None:
        """Tell adapters about ``n`` once the transaction commits (never a state a crash takes back)."""
        event = NegotiationChanged(n.id, n.state, n.pending)
        self.db.after_commit(lambda: self._bus.emit(event))

    def refuse(self, conn, n: Negotiation | None, msg, event: str, reason: str | LocalText, *,
               answer: bool = False) -> None:
        """A message that does not fit: state unchanged, the refusal on the timeline and in evidence;
        with ``answer`` the sender is told with a termination (unless it sent one)."""
        text = str(reason)
        self._ratelog.warning(f"contract:{msg.space_id}:{msg.sender}", "refused a contract message from %s: %s",
                              msg.sender, text)
        subject = n.id if n else f"unknown:{msg.id}"
        if n is not None:
            store.add_step(conn, n.id, ts=self.now(), event=f"refused {event}", who=msg.sender, direction="received",
                           before=n.state, after=n.state, reason=text,
                           message=msg.body if isinstance(msg.body, dict) else None)
            self.changed(n)
        self.record(conn, action=Action.REJECTED, subject=subject,
                    payload={"event": event, "peer": msg.sender, "space": msg.space_id, "reason": text})
        body = msg.body if isinstance(msg.body, dict) else {}
        if answer and body.get("@type") != "ContractNegotiationTerminationMessage":
            pids = [body.get(k) for k in ("consumerPid", "providerPid")]
            named = [p for p in pids if isinstance(p, str) and p]
            if named:  # the sender's own pid, to match the reply by; the one it does not name is ours
                consumer, provider = (p if isinstance(p, str) and p else messages.answer_pid(msg.sender, named[0],
                                                                                             self.did) for p in pids)
                reply = messages.termination(consumer, provider, "refused", reason)
                self.sync.send(conn, msg.space_id, to=msg.sender, type=messages.wire_type(reply), body=reply)

    def _deadline(self, state: State, pending: bool, moment: datetime | None = None) -> str | None:
        if state in FINAL:
            return None
        return rfc3339((moment or self.clock.now()) + (self.decision_timeout if pending else self.step_timeout))
