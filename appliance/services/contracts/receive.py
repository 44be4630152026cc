"""Applying a received negotiation message (inside the sync inbox transaction).

Who the message is for follows from its sender's role: a message only a consumer sends is for this
node as provider (its ``providerPid``) and the other way round; a termination may come from either.
Anything that does not fit is refused (``Transitions.refuse``): state unchanged, reason kept.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import lru_cache

from appliance.domain import odrl
from appliance.domain.contracts import Negotiation
from appliance.domain.negotiation import SENDER, Event, Role, State, step
from appliance.errors import ContractError, IllegalTransition, LocalText
from appliance.services.contracts import agreement as agreements
from appliance.services.contracts import approvals, messages, store, terms
from appliance.services.contracts.offers import listed_offers
from appliance.services.contracts.transitions import Transitions


def _reason(e: ContractError) -> LocalText | str:
    """What a refusal says: the detail of the error (its words, not the error's frame)."""
    return e.args[0] if e.args else e.message("en")


class Receiver:
    """Applies each negotiation message this node receives to its negotiations (``sync.on``)."""

    def __init__(self, steps: Transitions) -> None:
        self.steps = steps

    def handle(self, conn, msg) -> None:
        steps, body = self.steps, msg.body
        label = body.get("@type", "?") if isinstance(body, dict) else "?"
        try:
            event = messages.parse(body)
        except ContractError as e:
            steps.refuse(conn, None, msg, str(label), _reason(e))
            return
        n = self._find(conn, msg, event)
        if n is None:
            if event in (Event.REQUEST, Event.OFFER) and not body.get(_mine_key(event)):
                self._start(conn, msg, event)
            else:
                steps.refuse(conn, None, msg, event.value, LocalText("contract.reason.unknown_negotiation"),
                             answer=True)
            return
        other_key = "consumerPid" if n.role == Role.PROVIDER else "providerPid"
        if n.peer != msg.sender or n.space_id != msg.space_id:
            steps.refuse(conn, None, msg, event.value, LocalText("contract.reason.unknown_negotiation"), answer=True)
            return
        if n.peer_pid is not None and body.get(other_key) not in (n.peer_pid, None):
            steps.refuse(conn, n, msg, event.value, LocalText("contract.reason.other_pid"))
            return
        sender = SENDER.get(event, Role.CONSUMER if n.role == Role.PROVIDER else Role.PROVIDER)
        try:
            step(State(n.state), event, sender)
        except IllegalTransition as e:
            steps.refuse(conn, n, msg, event.value, LocalText("contract.reason.illegal_transition", *e.args))
            return
        if n.peer_pid is None:
            n = replace(n, peer_pid=body.get(other_key))
        expired = self._expired(body) if event in (Event.REQUEST, Event.OFFER) else None
        if expired:
            steps.refuse(conn, n, msg, event.value, expired)
            return
        try:
            self._apply(conn, n, msg, event)
        except ContractError as e:
            steps.refuse(conn, n, msg, event.value, _reason(e))

    def _find(self, conn, msg, event: Event) -> Negotiation | None:
        """The negotiation a message is for: by our own pid, or (a termination sent before the peer
        learned our pid) by the peer's."""
        body = msg.body
        roles = (Role.PROVIDER, Role.CONSUMER) if event is Event.TERMINATE else (
            Role.PROVIDER if SENDER[event] is Role.CONSUMER else Role.CONSUMER,)
        for role in roles:
            mine, theirs = ("providerPid", "consumerPid") if role is Role.PROVIDER else ("consumerPid", "providerPid")
            n = store.find(conn, body[mine]) if body.get(mine) else None  # a first request names no pid of ours
            if n is not None and n.peer == msg.sender and n.role == role.value:
                return n
            if event is Event.TERMINATE and body.get(theirs):
                n = store.by_peer_pid(conn, msg.space_id, msg.sender, body[theirs])
                if n is not None and n.role == role.value:
                    return n
        return None

    def _start(self, conn, msg, event: Event) -> None:
        """A first message from the peer: a request (we are the provider) or an offer (we are the consumer)."""
        steps, body = self.steps, msg.body
        offer = body["offer"]
        dataset = offer.get("target")
        peer_pid = body.get("consumerPid" if event is Event.REQUEST else "providerPid")
        if not dataset or not peer_pid:
            steps.refuse(conn, None, msg, event.value, LocalText("contract.reason.no_dataset"), answer=True)
            return
        existing = store.by_peer_pid(conn, msg.space_id, msg.sender, peer_pid)
        if existing is not None:
            steps.refuse(conn, existing, msg, event.value, LocalText("contract.reason.duplicate_start"))
            return
        role = Role.PROVIDER if event is Event.REQUEST else Role.CONSUMER
        listed = _listed_here(conn, msg.space_id, dataset) if role is Role.PROVIDER else None
        if role is Role.PROVIDER and not listed:
            steps.refuse(conn, None, msg, event.value, LocalText("contract.reason.not_offered", dataset), answer=True)
            return
        expired = self._expired(body)
        if expired:
            steps.refuse(conn, None, msg, event.value, expired, answer=True)
            return
        now = steps.now()
        n = Negotiation(messages.answer_pid(msg.sender, peer_pid, steps.did), peer_pid, role.value, msg.space_id,
                        msg.sender, dataset, offer, State.INITIAL.value, False, "", None, now, now)
        store.insert(conn, n)
        self._apply(conn, n, msg, event, listed=listed)

    def _apply(self, conn, n: Negotiation, msg, event: Event, *, listed: list[dict] | None = None) -> None:
        steps, body = self.steps, msg.body
        sender = SENDER.get(event, Role.CONSUMER if n.role == Role.PROVIDER else Role.PROVIDER)
        after, _ = step(State(n.state), event, sender)
        common = {"who": msg.sender, "direction": "received", "message": body}
        if event is Event.REQUEST:  # we are the provider: the offer's constraints, then a rule or a person
            now = steps.clock.now()
            who = terms.member(conn, n.space_id, msg.sender, body.get(terms.CREDENTIAL), now)
            unmet = terms.unmet(body["offer"], body, who, now)
            if unmet:  # e.g. purpose, region or grade: end it, naming each constraint
                n = steps.commit(conn, n, event, after, offer=body["offer"], **common)
                steps.terminate_unmet(conn, n, unmet)
                return
            if listed is None:  # (a first request brings the listing _start read)
                listed = _listed_here(conn, n.space_id, n.dataset_id) or []
            match = next((o for o in listed if agreements.same_terms(body["offer"], o)), None)
            rule = approvals.auto_rule(conn, dataset=n.dataset_id, offer_id=match["@id"] if match else None,
                                       peer=msg.sender, org=who.org, grade=who.grade, listed=match is not None)
            n = steps.commit(conn, n, event, after, pending=rule is None, offer=body["offer"], **common)
            if rule is not None:
                steps.agree(conn, n)
        elif event is Event.OFFER:  # we are the consumer: a person accepts, counters or terminates
            steps.commit(conn, n, event, after, pending=True, offer=body["offer"], **common)
        elif event is Event.ACCEPT:  # the consumer took our own offer: agree to it
            n = steps.commit(conn, n, event, after, **common)
            steps.agree(conn, n)
        elif event is Event.AGREE:  # check the provider's signature and terms, then countersign
            doc, signature = body["agreement"], body.get(messages.PROVIDER_SIG)
            agreements.verify(doc, signature, signer_keys=steps.peer_keys(msg.sender), offer=n.offer,
                              parties=(msg.sender, steps.did))
            if doc.get("target") != n.dataset_id:
                raise ContractError(LocalText("contract.reason.other_dataset"))
            store.save_agreement(conn, n.id, n.space_id, doc, signature, steps.now())
            n = steps.commit(conn, n, event, after, **common)
            mine = steps.sign(doc)
            store.set_agreement(conn, n.id, steps.now(), status="agreed", consumer_sig=mine)
            steps.move(conn, n, Event.VERIFY, messages.verification(*n.pids(), mine))
        elif event is Event.VERIFY:  # check the countersignature, finalize, file with the operator
            saved = store.agreement(conn, n.id)
            if saved is None:
                raise ContractError(LocalText("contract.reason.no_agreement"))
            signature = body.get(messages.CONSUMER_SIG)
            agreements.verify(saved["agreement"], signature, signer_keys=steps.peer_keys(msg.sender))
            store.set_agreement(conn, n.id, steps.now(), status="active", consumer_sig=signature)
            n = steps.commit(conn, n, event, after, **common)
            steps.move(conn, n, Event.FINALIZE, messages.event(*n.pids(), "FINALIZED"))
            steps.file_agreement(conn, n.space_id, {
                "agreement": saved["agreement"], "provider_signature": saved["provider_signature"],
                "consumer_signature": signature})
        elif event is Event.FINALIZE:
            store.set_agreement(conn, n.id, steps.now(), status="active")
            steps.commit(conn, n, event, after, **common)
        else:  # TERMINATE
            steps.commit(conn, n, event, after, reason=messages.reason_text(body), **common)

    def _expired(self, body: dict) -> LocalText | None:
        """Why the offer in ``body`` can no longer be agreed (a dateTime constraint has passed), or None."""
        policy, problems = odrl.from_jsonld(body.get("offer"))
        if policy is None or problems:
            return None  # terms this node cannot read are for a person to judge, not a reason to refuse
        failures = [f for f in odrl.evaluate(policy, {"now": self.steps.clock.now()}) if f.code == "expired"]
        return LocalText("contract.reason.offer_expired", failures[0]) if failures else None


def _mine_key(event: Event) -> str:
    return "providerPid" if SENDER.get(event) is Role.CONSUMER else "consumerPid"


def _listed_here(conn, space_id: str, dataset: str) -> list[dict] | None:
    row = conn.execute("SELECT entry FROM membership_listing WHERE space_id = ? AND dataset_id = ? AND status IN "
                       "('requested', 'approved')", (space_id, dataset)).fetchone()
    if row is None:
        return None
    return list(_offers_of(row[0], dataset))


@lru_cache(maxsize=64)
def _offers_of(entry_json: str, dataset: str) -> tuple[dict, ...]:
    """The listed offers of a stored listing entry, parsed once per distinct entry (read-only)."""
    return tuple(listed_offers(json.loads(entry_json), dataset))
