"""`dsnode demo`, contracts: node B negotiates two contracts for node A's listed dataset, one approved
by A's auto-approval rule on B's member grade (verified from B's credential) and one by a person at
the prompt (``--yes`` answers for them)."""

from __future__ import annotations

import time

from appliance import i18n

t = i18n.t
WHO_KEYS = {"sent": "contract.who.sent", "received": "contract.who.received", "local": "contract.who.local"}

RESEARCH = {"@id": "urn:dsnode:demo:offer:research", "permission": [{"action": "use", "constraint": [
    {"leftOperand": "purpose", "operator": "eq", "rightOperand": "research"}]}]}


def _wait(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return None


def _finalized(node, nid) -> bool:
    return bool(_wait(lambda: node.contracts.get(nid).state in ("FINALIZED", "TERMINATED")))


def _show(node, nid) -> None:
    n = node.contracts.get(nid)
    print(t("demo.contract.result", nid, n.state, n.reason or "-"))
    for s in node.contracts.timeline(nid):
        print(f"      {s.ts}  {s.state_before} → {s.state_after}  {t(WHO_KEYS[s.direction])}"
              + (f"  {s.reason}" if s.reason else ""))


def run_contract_demo(space_id: str, provider, consumer, dataset_id: str, step, ask) -> None:
    step(t("demo.contract.step.rule"))
    listed = [e for e in consumer.sync.catalog(space_id) if e.dataset_id == dataset_id]
    if not listed:
        print(t("demo.contract.no_dataset"))
        return
    offer_id = f"urn:offer:{dataset_id}:0"
    grade = consumer.membership.grade(space_id)  # from its operator-signed credential
    provider.contracts.add_rule({"dataset": dataset_id, "offer": offer_id, "min_grade": grade})
    print(t("demo.contract.rule_grade", dataset_id, offer_id, grade, grade))
    first = consumer.contracts.request(space_id, dataset_id, offer_id=offer_id)
    print(t("demo.contract.requested", consumer.identity.name, first))
    if not _finalized(consumer, first):
        print(t("demo.contract.timeout"))
    _show(consumer, first)

    step(t("demo.contract.step.person"))
    second = consumer.contracts.request(space_id, dataset_id, offer=RESEARCH)
    print(t("demo.contract.requested", consumer.identity.name, second))
    pending = _wait(lambda: provider.contracts.pending())
    for n in pending or []:
        print(t("demo.contract.pending", n.id, n.dataset_id, n.offer.get("@id")))
        if ask(t("demo.contract.approve_q")):
            provider.contracts.approve(n.id)
        else:
            provider.contracts.reject(n.id, t("demo.contract.declined"))
    if not pending or not _finalized(consumer, second):
        print(t("demo.contract.timeout"))
    _show(consumer, second)
