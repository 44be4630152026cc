"""ContractService (``node.contracts``): DSP 2025-1 contract negotiation between two nodes of a space.

Every transition is one write transaction: ``step()`` from the state table, the negotiation row, a
timeline row, an evidence entry and the outgoing message (``sync.send`` writes it to the outbox).
Received messages run inside the sync inbox transaction, so each is applied exactly once; a message
that does not fit (unknown negotiation, illegal in this state, forged or altered agreement, wrong
peer) leaves the state unchanged and is recorded on the timeline as refused, with the reason.

FINALIZED does not wait for the operator's filing receipt: the provider files the agreement in the
transaction that finalizes, and the receipt (``filing(id)``) arrives on its own (docs/contracts.md).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from appliance.clock import Clock, rfc3339
from appliance.domain.contracts import Action, Negotiation, NegotiationChanged, Step
from appliance.domain.negotiation import FINAL, SENDER, Event, Role, State, moves, step
from appliance.domain.odrl.vocab import purpose_term, region_term
from appliance.errors import DatasetNotInCatalog, IllegalTransition, NotYourMove, OfferChoiceNeeded, OfferNotFound
from appliance.events import EventBus
from appliance.services.contracts import agreement as agreements
from appliance.services.contracts import approvals, messages, retirement, store, terms
from appliance.services.sync.drops import RateLimitedLog
from appliance.storage.database import Database

log = logging.getLogger(__name__)


class ContractService:
    def __init__(self, db: Database, keyring, evidence, clock: Clock, bus: EventBus, sync, membership, *,
                 step_timeout: timedelta = timedelta(days=1), decision_timeout: timedelta = timedelta(days=7),
                 poll: float = 30.0) -> None:
        self.db = db
        self._keyring = keyring
        self._evidence = evidence
        self.clock = clock
        self.bus = bus
        self.sync = sync
        self._membership = membership
        self.step_timeout = step_timeout
        self.decision_timeout = decision_timeout
        self.poll = poll
        self.did: str = keyring.node_did
        self._ratelog = RateLimitedLog()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        for wire_type in messages.TYPES:
            sync.on(wire_type, self._on_message)
        sync.on(retirement.NOTICE, lambda conn, msg: retirement.receive(self, conn, msg))

    # --- reading -------------------------------------------------------------------------------

    def get(self, negotiation_id: str) -> Negotiation:
        return self.db.read(lambda c: store.get(c, negotiation_id))

    def list(self, *, state: str | None = None, pending: bool | None = None) -> list[Negotiation]:
        return self.db.read(lambda c: store.all_rows(c, state=state, pending=pending))

    def pending(self) -> list[Negotiation]:
        """Negotiations waiting for a person on this side (approve, reject, counter)."""
        return self.list(pending=True)

    def timeline(self, negotiation_id: str) -> list[Step]:
        return self.db.read(lambda c: (store.get(c, negotiation_id), store.steps(c, negotiation_id))[1])

    def agreement(self, negotiation_id: str) -> dict | None:
        """The signed agreement: {"agreement", "provider_signature", "consumer_signature", "status"}."""
        return self.db.read(lambda c: store.agreement(c, negotiation_id))

    def moves(self, negotiation_id: str) -> frozenset[Event]:
        n = self.get(negotiation_id)
        return moves(State(n.state), Role(n.role))

    # --- rules ---------------------------------------------------------------------------------

    def add_rule(self, rule: dict | approvals.Rule) -> int:
        rule = rule if isinstance(rule, approvals.Rule) else approvals.Rule.from_dict(rule)

        def write(conn) -> int:
            rule_id = approvals.add(conn, rule)
            self._evidence.append(conn, action=Action.RULE_ADDED, subject=f"rule:{rule_id}", payload=rule.to_dict())
            return rule_id

        return self.db.write(write)

    def rules(self) -> list[approvals.Rule]:
        return self.db.read(approvals.rules)

    # --- starting ------------------------------------------------------------------------------

    def request(self, space_id: str, dataset_id: str, *, offer_id: str | None = None,
                offer: dict | None = None, purpose: str | None = None, region: str | None = None) -> str:
        """Consumer: ask the provider of ``dataset_id`` (from the space catalog) for one of its offers
        (``offer_id``, which may be left out when the dataset has only one) or for the terms in ``offer``, stating the ``purpose`` and
        ``region`` of use (checked against the offer's constraints). Returns the negotiation id."""
        self.sync.space(space_id)  # SpaceNotFound when this node is not in it
        entry = next(iter(self.sync.catalog_entries(space_id, dataset_id)), None)  # approvals verified once, cached
        if entry is None:
            raise DatasetNotInCatalog(dataset_id, space_id, space_id)
        if offer is None:
            listed = listed_offers(entry.entry, dataset_id)
            chosen = [o for o in listed if offer_id is None or o["@id"] == offer_id]
            if not chosen:
                raise OfferNotFound(dataset_id, offer_id, space_id)
            if len(chosen) > 1:  # never pick terms for the user
                raise OfferChoiceNeeded(dataset_id, len(chosen), ", ".join(o["@id"] for o in chosen), space_id)
            offer = chosen[0]
        offer = message_offer(offer, dataset_id)
        pid = _new_pid()

        def write(conn) -> str:
            now = self._now()
            n = Negotiation(pid, None, Role.CONSUMER.value, space_id, entry.provider, dataset_id, offer,
                            State.INITIAL.value, False, "", None, now, now)
            store.insert(conn, n)
            body = messages.request(pid, None, offer, callback=f"mqtt:inbox/{self.did}")
            self._introduce(conn, space_id, body, purpose=purpose, region=region)
            self._move(conn, n, Event.REQUEST, body)
            return pid

        return self.db.write(write)

    def offer_to(self, space_id: str, consumer: str, dataset_id: str, offer: dict) -> str:
        """Provider: start a negotiation by offering ``offer`` to ``consumer`` (e.g. answering a demand)."""
        offer = message_offer(offer, dataset_id)
        pid = _new_pid()

        def write(conn) -> str:
            now = self._now()
            n = Negotiation(pid, None, Role.PROVIDER.value, space_id, consumer, dataset_id, offer,
                            State.INITIAL.value, False, "", None, now, now)
            store.insert(conn, n)
            self._move(conn, n, Event.OFFER, messages.offer(pid, None, offer, callback=f"mqtt:inbox/{self.did}"))
            return pid

        return self.db.write(write)

    # --- a person's decisions ------------------------------------------------------------------

    def approve(self, negotiation_id: str) -> None:
        """Provider: agree to the requested terms. Consumer: accept the provider's offer."""
        def write(conn) -> None:
            n = store.get(conn, negotiation_id)
            if n.role == Role.PROVIDER and n.state == State.REQUESTED:
                self._agree(conn, n)
            elif n.role == Role.CONSUMER and n.state == State.OFFERED:
                self._move(conn, n, Event.ACCEPT, messages.event(n.consumer_pid, n.provider_pid, "ACCEPTED"))
            else:
                raise NotYourMove(negotiation_id, n.state, "approve")

        self.db.write(write)

    def counter(self, negotiation_id: str, offer: dict) -> None:
        """Propose other terms: the provider with an offer, the consumer with a request."""
        def write(conn) -> None:
            n = store.get(conn, negotiation_id)
            proposed = message_offer(offer, n.dataset_id)
            n = replace(n, offer=proposed)
            if n.role == Role.PROVIDER and n.state == State.REQUESTED:
                self._move(conn, n, Event.OFFER, messages.offer(n.provider_pid, n.consumer_pid, proposed, callback=""))
            elif n.role == Role.CONSUMER and n.state == State.OFFERED:
                body = messages.request(n.consumer_pid, n.provider_pid, proposed, callback="")
                self._introduce(conn, n.space_id, body)
                self._move(conn, n, Event.REQUEST, body)
            else:
                raise NotYourMove(negotiation_id, n.state, "counter")

        self.db.write(write)

    def reject(self, negotiation_id: str, reason: str) -> None:
        self.terminate(negotiation_id, reason, code="rejected")

    def terminate(self, negotiation_id: str, reason: str, *, code: str = "terminated") -> None:
        """End the negotiation at any non-final step, telling the peer why."""
        def write(conn) -> None:
            n = store.get(conn, negotiation_id)
            if n.state in FINAL or n.state == State.INITIAL:
                raise NotYourMove(negotiation_id, n.state, "terminate")
            self._move(conn, n, Event.TERMINATE, self._termination(n, code, reason), reason=reason)

        self.db.write(write)

    def retire(self, negotiation_id: str, reason: str) -> None:
        """Provider: retire a finalized agreement; later transfers and uses under it are refused. The
        consumer is told (a notice signed by this node) and the operator's filing is updated."""
        def write(conn) -> None:
            n = store.get(conn, negotiation_id)
            saved = store.agreement(conn, negotiation_id)
            if n.role != Role.PROVIDER or n.state != State.FINALIZED or saved is None or saved["status"] != "active":
                raise NotYourMove(negotiation_id, n.state, "retire")
            notice = retirement.notice(self._keyring.signing_key(), n, saved, reason, self._now())
            store.set_agreement(conn, negotiation_id, self._now(), status="retired")
            store.add_step(conn, n.id, ts=self._now(), event=retirement.EVENT, who=self.did, direction="sent",
                           before=n.state, after=n.state, reason=reason, message=notice)
            self._evidence.append(conn, action=Action.AGREEMENT_RETIRED, subject=negotiation_id,
                                  payload={"reason": reason, "agreement": saved["agreement"]["@id"]})
            self.sync.send(conn, n.space_id, to=n.peer, type=retirement.NOTICE, body=notice)
            if self._membership is not None:
                self._membership.file_retirement(conn, n.space_id, retirement.filed_sha256(saved), notice)
            changed = NegotiationChanged(n.id, n.state, n.pending)
            self.db.after_commit(lambda: self.bus.emit(changed))

        self.db.write(write)

    def explain(self, negotiation_id: str, lang: str) -> str:
        """Why the negotiation ended, in ``lang`` (each failed constraint when the offer's terms were not met)."""
        n = self.get(negotiation_id)
        ending = [s for s in self.timeline(negotiation_id) if s.state_after == State.TERMINATED.value]
        return terms.explain(n.reason, ending[-1].message if ending else None, lang)

    def in_force(self, negotiation_id: str) -> bool:
        """Whether the agreement of this negotiation governs transfers now (finalized, not retired)."""
        a = self.agreement(negotiation_id)
        return a is not None and a["status"] == "active"

    # --- timeouts ------------------------------------------------------------------------------

    def expire_stale(self, now: datetime | None = None) -> list[str]:
        """Terminate every negotiation whose current step ran past its deadline; returns their ids."""
        def write(conn) -> list[str]:
            done = []
            for n in store.stale(conn, rfc3339(now or self.clock.now())):
                reason = f"step {n.state} timed out"
                self._local(conn, n, Event.TIMEOUT, reason)
                if n.peer_pid or n.role == Role.CONSUMER:
                    body = self._termination(n, "timeout", reason)
                    self.sync.send(conn, n.space_id, to=n.peer, type=messages.wire_type(body), body=body)
                done.append(n.id)
            return done

        return self.db.write(write)

    def start(self) -> None:
        if self._timer is None:
            self._stop.clear()
            self._timer = threading.Thread(target=self._run_timer, name="dsnode-contracts", daemon=True)
            self._timer.start()

    def stop(self) -> None:
        if self._timer is not None:
            self._stop.set()
            self._timer.join()
            self._timer = None

    def _run_timer(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.expire_stale()
            except Exception:  # noqa: BLE001 - the store may be closing; try again next round
                log.warning("could not expire stale negotiations", exc_info=True)

    # --- transitions ---------------------------------------------------------------------------

    def _now(self) -> str:
        return rfc3339(self.clock.now())

    def _deadline(self, state: State, pending: bool, moment: datetime | None = None) -> str | None:
        if state in FINAL:
            return None
        return rfc3339((moment or self.clock.now()) + (self.decision_timeout if pending else self.step_timeout))

    def _commit(self, conn, n: Negotiation, event: Event, after: State, *, who: str, direction: str,
                reason: str = "", message: dict | None = None, pending: bool = False, **changes) -> Negotiation:
        moment = self.clock.now()
        now = rfc3339(moment)
        new = replace(n, state=after.value, pending=pending, deadline=self._deadline(after, pending, moment),
                      updated=now, reason=reason if after is State.TERMINATED else n.reason, **changes)
        store.update(conn, new)
        store.add_step(conn, n.id, ts=now, event=event.value, who=who, direction=direction, before=n.state,
                       after=after.value, reason=reason, message=message)
        self._evidence.append(conn, action=Action[after.value], subject=n.id, payload={
            "event": event.value, "direction": direction, "peer": n.peer, "space": n.space_id,
            "dataset": n.dataset_id, "role": n.role, "reason": reason})
        changed = NegotiationChanged(n.id, after.value, pending)
        self.db.after_commit(lambda: self.bus.emit(changed))  # adapters never see a state a crash takes back
        return new

    def _move(self, conn, n: Negotiation, event: Event, body: dict, *, reason: str = "", **changes) -> Negotiation:
        """This node sends ``body`` (carrying ``event``): step, persist, evidence and outbox together."""
        after = step(State(n.state), event, Role(n.role) if event is not Event.TERMINATE else None)
        new = self._commit(conn, n, event, after, who=self.did, direction="sent", reason=reason, message=body,
                           **changes)
        self.sync.send(conn, n.space_id, to=n.peer, type=messages.wire_type(body), body=body)
        return new

    def _introduce(self, conn, space_id: str, body: dict, *, purpose: str | None = None,
                   region: str | None = None) -> None:
        """Consumer: add our membership credential (our grade) and the stated use to a request."""
        row = conn.execute("SELECT credential FROM sync_space WHERE space_id = ?", (space_id,)).fetchone()
        if row and row[0]:
            body[terms.CREDENTIAL] = json.loads(row[0])
        use = {k: v for k, v in (("purpose", purpose and purpose_term(purpose)),
                                 ("region", region and region_term(region))) if v}
        if use:
            body[terms.USE_CONTEXT] = use

    def _terminate_unmet(self, conn, n: Negotiation, failures: list) -> Negotiation:
        """Provider: the request does not meet the offer's constraints; end it naming each one."""
        reason = "the request does not meet the offer's terms: " + "; ".join(f.en for f in failures)
        body = self._termination(n, "constraint_unmet", reason)
        body[terms.FAILURES] = [terms.failure_json(f) for f in failures]
        return self._move(conn, n, Event.TERMINATE, body, reason=reason)

    def _termination(self, n: Negotiation, code: str, reason: str) -> dict:
        """A termination naming both pids; before the peer's first answer its pid is the one it will use."""
        peer_pid = n.peer_pid or answer_pid(self.did, n.id, n.peer)
        pids = (n.id, peer_pid) if n.role == Role.CONSUMER else (peer_pid, n.id)
        return messages.termination(*pids, code, reason)

    def _local(self, conn, n: Negotiation, event: Event, reason: str) -> Negotiation:
        after = step(State(n.state), event, None)
        return self._commit(conn, n, event, after, who=self.did, direction="local", reason=reason)

    def _agree(self, conn, n: Negotiation) -> Negotiation:
        """Provider: build and sign the agreement from the offer on the table and send it."""
        doc = agreements.build(n.offer, agreement_id=f"urn:uuid:{uuid.uuid4()}", target=n.dataset_id,
                               assigner=self.did, assignee=n.peer, timestamp=self._now())
        signature = agreements.sign(self._keyring.signing_key(), doc)
        store.save_agreement(conn, n.id, n.space_id, doc, signature, self._now())
        return self._move(conn, n, Event.AGREE, messages.agreement(n.consumer_pid, n.provider_pid, doc, signature))

    # --- receiving -----------------------------------------------------------------------------

    def _on_message(self, conn, msg) -> None:
        from appliance.services.contracts.receive import handle

        handle(self, conn, msg)

    def _refuse(self, conn, n: Negotiation | None, msg, event: str, reason: str, *, answer: bool = False) -> None:
        """A message that does not fit: state unchanged, the refusal on the timeline and in evidence."""
        self._ratelog.warning(f"contract:{msg.space_id}:{msg.sender}", "refused a contract message from %s: %s",
                              msg.sender, reason)
        subject = n.id if n else f"unknown:{msg.id}"
        if n is not None:
            store.add_step(conn, n.id, ts=self._now(), event=f"refused {event}", who=msg.sender, direction="received",
                           before=n.state, after=n.state, reason=reason,
                           message=msg.body if isinstance(msg.body, dict) else None)
            changed = NegotiationChanged(n.id, n.state, n.pending)
            self.db.after_commit(lambda: self.bus.emit(changed))
        self._evidence.append(conn, action=Action.REJECTED, subject=subject,
                              payload={"event": event, "peer": msg.sender, "space": msg.space_id, "reason": reason})
        body = msg.body if isinstance(msg.body, dict) else {}
        if answer and body.get("@type") != "ContractNegotiationTerminationMessage":
            pids = [body.get(k) for k in ("consumerPid", "providerPid")]
            named = [p for p in pids if isinstance(p, str) and p]
            if named:  # the sender's own pid, to match the reply by; the one it does not name is ours
                consumer, provider = (p if isinstance(p, str) and p else answer_pid(msg.sender, named[0], self.did)
                                      for p in pids)
                reply = messages.termination(consumer, provider, "refused", reason)
                self.sync.send(conn, msg.space_id, to=msg.sender, type=messages.wire_type(reply), body=reply)


def _new_pid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


_ANSWER_PIDS = uuid.UUID("6c1f0d2e-3b7a-5e49-9a0c-2f8d4b1e7a53")


def answer_pid(starter: str, starter_pid: str, answerer: str) -> str:
    """The pid a node gives a negotiation another node started (a request or an offer): derived
    from both nodes and the starter's pid, so the starter knows it before any answer arrives and
    can name it in a termination (DSP messages after the first carry both pids)."""
    return f"urn:uuid:{uuid.uuid5(_ANSWER_PIDS, f'{starter} {starter_pid} {answerer}')}"


def listed_offers(entry: dict, dataset_id: str) -> list[dict]:
    """The offers of a catalog entry, as DSP MessageOffers (an offer without @id gets a stable one)."""
    if isinstance(entry, dict) and isinstance(entry.get("entry"), dict):  # a cached catalog body
        entry = entry["entry"]
    raw = entry.get("hasPolicy", entry.get("odrl:hasPolicy", [])) if isinstance(entry, dict) else []
    raw = raw if isinstance(raw, list) else [raw]
    out = []
    for i, o in enumerate(x for x in raw if isinstance(x, dict)):
        offer = dict(o)
        offer.setdefault("@id", f"urn:offer:{dataset_id}:{i}")
        out.append(message_offer(offer, dataset_id))
    return out


def message_offer(offer: dict, dataset_id: str) -> dict:
    """``offer`` as a DSP MessageOffer: @type Offer, an @id and the dataset as target."""
    doc = {k: v for k, v in offer.items() if k not in ("@context",)}
    doc["@type"] = "Offer"
    doc.setdefault("@id", f"urn:uuid:{uuid.uuid4()}")
    doc["target"] = dataset_id
    return doc


__all__ = ["ContractService", "IllegalTransition", "SENDER", "listed_offers", "message_offer"]
