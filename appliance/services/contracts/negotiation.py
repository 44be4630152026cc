"""ContractService (``node.contracts``): DSP 2025-1 contract negotiation between two nodes of a space.

Every transition is one write transaction (``Transitions``, transitions.py): ``step()`` from the
state table, the negotiation row, a timeline row, an evidence entry and the outgoing message
(``sync.send`` writes it to the outbox). Received messages are applied by ``Receiver`` (receive.py)
inside the sync inbox transaction, so each is applied exactly once; a message that does not fit
(unknown negotiation, illegal in this state, forged or altered agreement, wrong peer) leaves the
state unchanged and is recorded on the timeline as refused, with the reason.

FINALIZED does not wait for the operator's filing receipt: the provider files the agreement in the
transaction that finalizes, and the receipt (``filing(id)``) arrives on its own (docs/contracts.md).
"""

from __future__ import annotations

import builtins
import json
import logging
import threading
from dataclasses import replace
from datetime import datetime, timedelta

from appliance.clock import Clock, rfc3339
from appliance.domain.contracts import Action, Negotiation, Step
from appliance.domain.negotiation import SENDER, Event, Role, State, moves
from appliance.domain.odrl.vocab import purpose_term, region_term
from appliance.errors import (ContractError, DatasetNotInCatalog, IllegalTransition, LocalText, NotYourMove,
                              OfferChoiceNeeded, OfferNotFound)
from appliance.events import EventBus
from appliance.services.contracts import approvals, messages, retirement, store, terms
from appliance.services.contracts.messages import answer_pid
from appliance.services.contracts.offers import listed_offers, message_offer
from appliance.services.contracts.receive import Receiver
from appliance.services.contracts.transitions import Transitions
from appliance.services.evidence import EvidenceLog
from appliance.services.identity import KeyRing
from appliance.services.membership import MembershipService
from appliance.services.sync import SyncService
from appliance.storage.database import Database

log = logging.getLogger(__name__)


class ContractService:
    def __init__(self, db: Database, keyring: KeyRing, evidence: EvidenceLog, clock: Clock, bus: EventBus,
                 sync: SyncService, membership: MembershipService, *,
                 step_timeout: timedelta = timedelta(days=1), decision_timeout: timedelta = timedelta(days=7),
                 poll: float = 30.0) -> None:
        self.db = db
        self._keyring = keyring
        self.clock = clock
        self.bus = bus
        self.sync = sync
        self.poll = poll
        self.did: str = keyring.node_did
        self._steps = Transitions(db, keyring, evidence, clock, bus, sync, membership, step_timeout=step_timeout,
                                  decision_timeout=decision_timeout)
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        receiver = Receiver(self._steps)
        for wire_type in messages.TYPES:
            sync.on(wire_type, receiver.handle)
        sync.on(retirement.NOTICE, lambda conn, msg: retirement.receive(self._steps, conn, msg))

    @property
    def step_timeout(self) -> timedelta:
        """How long the peer has to answer a step before the negotiation times out."""
        return self._steps.step_timeout

    @property
    def decision_timeout(self) -> timedelta:
        """How long a step waiting for a person may wait before it times out."""
        return self._steps.decision_timeout

    # --- reading -------------------------------------------------------------------------------

    def get(self, negotiation_id: str) -> Negotiation:
        return self.db.read(lambda c: store.get(c, negotiation_id))

    def list(self, *, state: str | None = None, pending: bool | None = None) -> list[Negotiation]:
        return self.db.read(lambda c: store.all_rows(c, state=state, pending=pending))

    def pending(self) -> builtins.list[Negotiation]:
        """Negotiations waiting for a person on this side (approve, reject, counter)."""
        return self.list(pending=True)

    def timeline(self, negotiation_id: str) -> builtins.list[Step]:
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
            self._steps.record(conn, action=Action.RULE_ADDED, subject=f"rule:{rule_id}", payload=rule.to_dict())
            return rule_id

        return self.db.write(write)

    def rules(self) -> builtins.list[approvals.Rule]:
        return self.db.read(approvals.rules)

    def numbered_rules(self) -> builtins.list[tuple[int, approvals.Rule]]:
        """(rule id, rule) in the order they are tried: the id names a rule to remove."""
        return self.db.read(approvals.numbered)

    def remove_rule(self, rule_id: int) -> None:
        """Stop auto-approving what rule ``rule_id`` approved; requests it matched wait for a person again."""
        def write(conn) -> None:
            rule = approvals.remove(conn, rule_id)
            if rule is None:
                raise ContractError(LocalText("contract.reason.no_rule", rule_id))
            self._steps.record(conn, action=Action.RULE_REMOVED, subject=f"rule:{rule_id}", payload=rule.to_dict())

        self.db.write(write)

    # --- starting ------------------------------------------------------------------------------

    def request(self, space_id: str, dataset_id: str, *, offer_id: str | None = None,
                offer: dict | None = None, purpose: str | None = None, region: str | None = None) -> str:
        """Consumer: ask the provider of ``dataset_id`` (from the space catalog) for one of its offers
        (``offer_id``, which may be left out when the dataset has only one) or for the terms in ``offer``,
        stating the ``purpose`` and ``region`` of use (checked against the offer's constraints). Returns the
        negotiation id."""
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
        pid = messages.new_pid()

        def write(conn) -> str:
            now = self._steps.now()
            n = Negotiation(pid, None, Role.CONSUMER.value, space_id, entry.provider, dataset_id, offer,
                            State.INITIAL.value, False, "", None, now, now)
            store.insert(conn, n)
            body = messages.request(pid, None, offer, callback=f"mqtt:inbox/{self.did}")
            self._introduce(conn, space_id, body, purpose=purpose, region=region)
            self._steps.move(conn, n, Event.REQUEST, body)
            return pid

        return self.db.write(write)

    def offer_to(self, space_id: str, consumer: str, dataset_id: str, offer: dict) -> str:
        """Provider: start a negotiation by offering ``offer`` to ``consumer`` (e.g. answering a demand)."""
        offer = message_offer(offer, dataset_id)
        pid = messages.new_pid()

        def write(conn) -> str:
            now = self._steps.now()
            n = Negotiation(pid, None, Role.PROVIDER.value, space_id, consumer, dataset_id, offer,
                            State.INITIAL.value, False, "", None, now, now)
            store.insert(conn, n)
            self._steps.move(conn, n, Event.OFFER, messages.offer(pid, None, offer, callback=f"mqtt:inbox/{self.did}"))
            return pid

        return self.db.write(write)

    # --- a person's decisions ------------------------------------------------------------------

    def approve(self, negotiation_id: str) -> None:
        """Provider: agree to the requested terms. Consumer: accept the provider's offer."""
        def write(conn) -> None:
            n = store.get(conn, negotiation_id)
            if n.role == Role.PROVIDER and n.state == State.REQUESTED:
                self._steps.agree(conn, n)
            elif n.role == Role.CONSUMER and n.state == State.OFFERED:
                self._steps.move(conn, n, Event.ACCEPT, messages.event(*n.pids(), "ACCEPTED"))
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
                body = messages.offer(n.id, n.consumer_pid, proposed, callback="")  # n.id: the provider's
                self._steps.move(conn, n, Event.OFFER, body)
            elif n.role == Role.CONSUMER and n.state == State.OFFERED:
                body = messages.request(n.id, n.provider_pid, proposed, callback="")  # n.id: the consumer's
                self._introduce(conn, n.space_id, body)
                self._steps.move(conn, n, Event.REQUEST, body)
            else:
                raise NotYourMove(negotiation_id, n.state, "counter")

        self.db.write(write)

    def reject(self, negotiation_id: str, reason: str) -> None:
        self.terminate(negotiation_id, reason, code="rejected")

    def terminate(self, negotiation_id: str, reason: str, *, code: str = "terminated") -> None:
        """End the negotiation at any non-final step, telling the peer why."""
        def write(conn) -> None:
            n = store.get(conn, negotiation_id)
            if Event.TERMINATE not in moves(State(n.state), Role(n.role)):
                raise NotYourMove(negotiation_id, n.state, "terminate")
            self._steps.move(conn, n, Event.TERMINATE, self._steps.termination(n, code, reason), reason=reason)

        self.db.write(write)

    def retire(self, negotiation_id: str, reason: str) -> None:
        """Provider: retire a finalized agreement; later transfers and uses under it are refused. The
        consumer is told (a notice signed by this node) and the operator's filing is updated."""
        def write(conn) -> None:
            n = store.get(conn, negotiation_id)
            saved = store.agreement(conn, negotiation_id)
            if n.role != Role.PROVIDER or n.state != State.FINALIZED or saved is None or saved["status"] != "active":
                raise NotYourMove(negotiation_id, n.state, "retire")
            now = self._steps.now()
            notice = retirement.notice(self._keyring.signing_key(), n, saved, reason, now)
            store.set_agreement(conn, negotiation_id, now, status="retired")
            store.add_step(conn, n.id, ts=now, event=retirement.EVENT, who=self.did, direction="sent",
                           before=n.state, after=n.state, reason=reason, message=notice)
            self._steps.record(conn, action=Action.AGREEMENT_RETIRED, subject=negotiation_id,
                               payload={"reason": reason, "agreement": saved["agreement"]["@id"]})
            self.sync.send(conn, n.space_id, to=n.peer, type=retirement.NOTICE, body=notice)
            self._steps.file_retirement(conn, n.space_id, retirement.filed_sha256(saved), notice)
            self._steps.changed(n)

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

    def expire_stale(self, now: datetime | None = None) -> builtins.list[str]:
        """Terminate every negotiation whose current step ran past its deadline; returns their ids."""
        def write(conn) -> list[str]:
            done = []
            for n in store.stale(conn, rfc3339(now or self.clock.now())):
                reason = LocalText("contract.reason.timed_out", n.state)
                told = bool(n.peer_pid) or n.role == Role.CONSUMER  # a provider that never answered has no peer pid
                body = self._steps.termination(n, "timeout", reason) if told else None
                self._steps.local(conn, n, Event.TIMEOUT, reason, message=body)
                if body is not None:
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

    # --- requests ------------------------------------------------------------------------------

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


__all__ = ["ContractService", "IllegalTransition", "SENDER", "answer_pid", "listed_offers", "message_offer"]
