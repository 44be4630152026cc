"""`dsnode demo`, contracts: node B negotiates two contracts for node A's listed dataset, one approved
by A's auto-approval rule on B's member grade (verified from B's credential) and one by a person at
the prompt (``--yes`` answers for them); then a request whose stated purpose the offer does not
allow ends TERMINATED, naming the constraint."""

from __future__ import annotations

import time

from appliance import i18n
from appliance.domain.odrl.vocab import DPV

t = i18n.t
WHO_KEYS = {"sent": "contract.who.sent", "received": "contract.who.received", "local": "contract.who.local"}

RESEARCH = {"@id": "urn:dsnode:demo:offer:research", "permission": [{"action": "use", "constraint": [
    {"leftOperand": "purpose", "operator": "eq", "rightOperand": DPV + "AcademicResearch"}]}]}
MARKETING = DPV + "Marketing"


def wait_for(predicate, timeout: float = 20.0):
    """Poll ``predicate`` until it gives a true value (returned) or ``timeout`` passes (None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return None


def _finalized(node, nid) -> bool:
    return bool(wait_for(lambda: node.contracts.get(nid).state in ("FINALIZED", "TERMINATED")))


def state_words(state: str) -> str:
    """A Dataspace Protocol state (``FINALIZED``) as the reader's language calls it (协议已生效)."""
    return t(f"cli.contract_state.{state.lower()}")


def _show(node, nid) -> None:
    n = node.contracts.get(nid)
    print(t("demo.contract.outcome", node.identity.name, nid, state_words(n.state)))
    if n.state == "TERMINATED":
        print(t("demo.contract.reason", node.contracts.explain(nid, i18n.get_lang())))
    for s in node.contracts.timeline(nid):
        print(f"      {s.ts}  {state_words(s.state_before)} → {state_words(s.state_after)}  {t(WHO_KEYS[s.direction])}")


def run_contract_demo(space_id: str, provider, consumer, dataset_id: str, step, ask, *, min_grade: int = 1) -> None:
    step(t("demo.contract.step.rule"))
    listed = [e for e in consumer.sync.catalog(space_id) if e.dataset_id == dataset_id]
    if not listed:
        print(t("demo.contract.no_dataset"))
        return
    offer_id = f"urn:offer:{dataset_id}:0"
    provider.contracts.add_rule({"dataset": dataset_id, "offer": offer_id, "min_grade": min_grade})
    grade = consumer.membership.grade(space_id)  # from its operator-signed credential
    print(t("demo.contract.rule_grade", provider.identity.name, dataset_id, offer_id, min_grade,
            consumer.identity.name, grade))
    first = consumer.contracts.request(space_id, dataset_id, offer_id=offer_id)
    print(t("demo.contract.requested", consumer.identity.name, first))
    if not _finalized(consumer, first):
        print(t("demo.contract.timeout"))
    _show(consumer, first)

    step(t("demo.contract.step.person"))
    second = consumer.contracts.request(space_id, dataset_id, offer=RESEARCH)
    print(t("demo.contract.requested", consumer.identity.name, second))
    pending = wait_for(lambda: provider.contracts.pending())
    for n in pending or []:
        # one negotiation, one id on each side: the provider approves it by its own
        print(t("demo.contract.waiting", provider.identity.name, n.dataset_id, n.offer.get("@id"), n.id,
                consumer.identity.name, n.peer_pid))
        if ask(t("demo.contract.approve_q")):
            provider.contracts.approve(n.id)
        else:
            provider.contracts.reject(n.id, t("demo.contract.declined"))
    if not pending or not _finalized(consumer, second):
        print(t("demo.contract.timeout"))
    _show(consumer, second)

    step(t("demo.contract.step.refused"))
    third = consumer.contracts.request(space_id, dataset_id, offer=RESEARCH, purpose=MARKETING)
    print(t("demo.contract.requested_purpose", consumer.identity.name, third, i18n.t("demo.contract.marketing")))
    if not _finalized(consumer, third):
        print(t("demo.contract.timeout"))
    _show(consumer, third)
