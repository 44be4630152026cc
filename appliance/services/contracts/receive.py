"""Applying a received negotiation message (inside the sync inbox transaction).

Who the message is for follows from its sender's role: a message only a consumer sends is for this
node as provider (its ``providerPid``) and the other way round; a termination may come from either.
Anything that does not fit is refused by ``ContractService._refuse``: state unchanged, reason kept.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import lru_cache

from appliance.domain import odrl
from appliance.domain.contracts import Negotiation
from appliance.domain.negotiation import SENDER, Event, Role, State, step
from appliance.errors import ContractError, IllegalTransition
from appliance.services.contracts import agreement as agreements
from appliance.services.contracts import approvals, messages, store, terms


def handle(svc, conn, msg) -> None:
    body = msg.body
    label = body.get("@type", "?") if isinstance(body, dict) else "?"
    try:
        event = messages.parse(body)
    except ContractError as e:
        svc._refuse(conn, None, msg, str(label), e.args[0] if e.args else "invalid message")
        return
    n = _find(svc, conn, msg, event)
    if n is None:
        if event in (Event.REQUEST, Event.OFFER) and not body.get(_mine_key(event)):
            _start(svc, conn, msg, event)
        else:
            svc._refuse(conn, None, msg, event.value, "unknown negotiation", answer=True)
        return
    other_key = "consumerPid" if n.role == Role.PROVIDER else "providerPid"
    if n.peer != msg.sender or n.space_id != msg.space_id:
        svc._refuse(conn, None, msg, event.value, "unknown negotiation", answer=True)
        return
    if n.peer_pid is not None and body.get(other_key) not in (n.peer_pid, None):
        svc._refuse(conn, n, msg, event.value, "the message names another negotiation of the peer")
        return
    sender = SENDER.get(event, Role.CONSUMER if n.role == Role.PROVIDER else Role.PROVIDER)
    try:
        step(State(n.state), event, sender)
    except IllegalTransition as e:
        svc._refuse(conn, n, msg, event.value, e.message("en"))
        return
    if n.peer_pid is None:
        n = replace(n, peer_pid=body.get(other_key))
    expired = _expired(svc, body) if event in (Event.REQUEST, Event.OFFER) else None
    if expired:
        svc._refuse(conn, n, msg, event.value, expired)
        return
    try:
        _apply(svc, conn, n, msg, event)
    except ContractError as e:
        svc._refuse(conn, n, msg, event.value, e.args[0] if e.args else str(e))


def _mine_key(event: Event) -> str:
    return "providerPid" if SENDER.get(event) is Role.CONSUMER else "consumerPid"


def _find(svc, conn, msg, event: Event) -> Negotiation | None:
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


def _start(svc, conn, msg, event: Event) -> None:
    """A first message from the peer: a request (we are the provider) or an offer (we are the consumer)."""
    body = msg.body
    offer = body["offer"]
    dataset = offer.get("target")
    peer_pid = body.get("consumerPid" if event is Event.REQUEST else "providerPid")
    if not dataset or not peer_pid:
        svc._refuse(conn, None, msg, event.value, "the offer names no dataset", answer=True)
        return
    existing = store.by_peer_pid(conn, msg.space_id, msg.sender, peer_pid)
    if existing is not None:
        svc._refuse(conn, existing, msg, event.value, "a duplicate start of an existing negotiation")
        return
    role = Role.PROVIDER if event is Event.REQUEST else Role.CONSUMER
    listed = _listed_here(conn, msg.space_id, dataset) if role is Role.PROVIDER else None
    if role is Role.PROVIDER and not listed:
        svc._refuse(conn, None, msg, event.value, f"dataset {dataset} is not offered by this node", answer=True)
        return
    expired = _expired(svc, body)
    if expired:
        svc._refuse(conn, None, msg, event.value, expired, answer=True)
        return
    now = svc._now()
    from appliance.services.contracts.negotiation import answer_pid

    n = Negotiation(answer_pid(msg.sender, peer_pid, svc.did), peer_pid, role.value, msg.space_id, msg.sender, dataset, offer, State.INITIAL.value,
                    False, "", None, now, now)
    store.insert(conn, n)
    _apply(svc, conn, n, msg, event, listed=listed)


def _listed_here(conn, space_id: str, dataset: str) -> list[dict] | None:
    row = conn.execute("SELECT entry FROM membership_listing WHERE space_id = ? AND dataset_id = ? AND status IN "
                       "('requested', 'approved')", (space_id, dataset)).fetchone()
    if row is None:
        return None
    return list(_offers_of(row[0], dataset))


@lru_cache(maxsize=64)
def _offers_of(entry_json: str, dataset: str) -> tuple[dict, ...]:
    """The listed offers of a stored listing entry, parsed once per distinct entry (read-only)."""
    from appliance.services.contracts.negotiation import listed_offers

    return tuple(listed_offers(json.loads(entry_json), dataset))


def _apply(svc, conn, n: Negotiation, msg, event: Event, *, listed: list[dict] | None = None) -> None:
    body = msg.body
    sender = SENDER.get(event, Role.CONSUMER if n.role == Role.PROVIDER else Role.PROVIDER)
    after = step(State(n.state), event, sender)
    common = {"who": msg.sender, "direction": "received", "message": body}
    if event is Event.REQUEST:  # we are the provider: the offer's constraints, then a rule or a person
        now = svc.clock.now()
        who = terms.member(conn, n.space_id, msg.sender, body.get(terms.CREDENTIAL), now)
        unmet = terms.unmet(body["offer"], body, who, now)
        if unmet:  # e.g. purpose, region or grade: end it, naming each constraint
            n = svc._commit(conn, n, event, after, offer=body["offer"], **common)
            svc._terminate_unmet(conn, n, unmet)
            return
        if listed is None:  # (a first request brings the listing _start read)
            listed = _listed_here(conn, n.space_id, n.dataset_id) or []
        match = next((o for o in listed if agreements.same_terms(body["offer"], o)), None)
        rule = approvals.auto_rule(conn, dataset=n.dataset_id, offer_id=match["@id"] if match else None,
                                   peer=msg.sender, org=who.org, grade=who.grade, listed=match is not None)
        n = svc._commit(conn, n, event, after, pending=rule is None, offer=body["offer"], **common)
        if rule is not None:
            svc._agree(conn, n)
    elif event is Event.OFFER:  # we are the consumer: a person accepts, counters or terminates
        svc._commit(conn, n, event, after, pending=True, offer=body["offer"], **common)
    elif event is Event.ACCEPT:  # the consumer took our own offer: agree to it
        n = svc._commit(conn, n, event, after, **common)
        svc._agree(conn, n)
    elif event is Event.AGREE:  # check the provider's signature and terms, then countersign
        doc, signature = body["agreement"], body.get(messages.PROVIDER_SIG)
        agreements.verify(doc, signature, signer_keys=_keys(svc, msg.sender), offer=n.offer,
                          parties=(msg.sender, svc.did))
        if doc.get("target") != n.dataset_id:
            raise ContractError("the agreement is for another dataset")
        store.save_agreement(conn, n.id, n.space_id, doc, signature, svc._now())
        n = svc._commit(conn, n, event, after, **common)
        mine = agreements.sign(svc._keyring.signing_key(), doc)
        store.set_agreement(conn, n.id, svc._now(), status="agreed", consumer_sig=mine)
        svc._move(conn, n, Event.VERIFY, messages.verification(n.consumer_pid, n.provider_pid, mine))
    elif event is Event.VERIFY:  # check the countersignature, finalize, file with the operator
        saved = store.agreement(conn, n.id)
        if saved is None:
            raise ContractError("no agreement was sent in this negotiation")
        signature = body.get(messages.CONSUMER_SIG)
        agreements.verify(saved["agreement"], signature, signer_keys=_keys(svc, msg.sender))
        store.set_agreement(conn, n.id, svc._now(), status="active", consumer_sig=signature)
        n = svc._commit(conn, n, event, after, **common)
        svc._move(conn, n, Event.FINALIZE, messages.event(n.consumer_pid, n.provider_pid, "FINALIZED"))
        if svc._membership is not None:
            svc._membership.file_agreement(conn, n.space_id, {
                "agreement": saved["agreement"], "provider_signature": saved["provider_signature"],
                "consumer_signature": signature})
    elif event is Event.FINALIZE:
        store.set_agreement(conn, n.id, svc._now(), status="active")
        svc._commit(conn, n, event, after, **common)
    else:  # TERMINATE
        svc._commit(conn, n, event, after, reason=messages.reason_text(body), **common)


def _keys(svc, did: str) -> tuple[str, ...]:
    return tuple({did, svc.sync.keys.current(did)})


def _expired(svc, body: dict) -> str | None:
    """Why the offer in ``body`` can no longer be agreed (a dateTime constraint has passed), or None."""
    policy, problems = odrl.from_jsonld(body.get("offer"))
    if policy is None or problems:
        return None  # terms this node cannot read are for a person to judge, not a reason to refuse
    failures = [f for f in odrl.evaluate(policy, {"now": svc.clock.now()}) if f.code == "expired"]
    return "the offer has expired: " + failures[0].message("en") if failures else None
