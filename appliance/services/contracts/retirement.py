"""Retiring an agreement: the provider stops it, and tells the consumer and the operator.

The notice (``dsnode.contract.agreement_retired``) travels sealed and signed on the consumer's inbox
through the outbox (so it reaches a consumer that is offline now), and carries a statement signed
with the provider's node key over its RFC 8785 form, which the consumer keeps as evidence::

    {"consumerPid", "providerPid", "statement": {"@type": "dsnode:AgreementRetirement",
     "agreement": <@id>, "assigner", "assignee", "reason", "retiredAt"}, "signature": {…}}

The consumer accepts it only from the agreement's provider (its assigner, the negotiation's peer)
with a valid signature; anything else is refused and changes nothing.
"""

from __future__ import annotations

from appliance.domain.contracts import Action
from appliance.crypto.statement import entry_sha256
from appliance.domain.negotiation import Role
from appliance.errors import ContractError, LocalText
from appliance.services.contracts import agreement as agreements
from appliance.services.contracts import store
from appliance.services.contracts.transitions import Transitions

NOTICE = "dsnode.contract.agreement_retired"
EVENT = "AgreementRetired"  # the timeline's name for the step (not a DSP message)
STATEMENT = "dsnode:AgreementRetirement"


def notice(key, n, saved: dict, reason: str, ts: str) -> dict:
    doc = saved["agreement"]
    statement = {"@type": STATEMENT, "agreement": doc["@id"], "assigner": doc.get("assigner"),
                 "assignee": doc.get("assignee"), "reason": reason, "retiredAt": ts}
    return {"consumerPid": n.consumer_pid, "providerPid": n.provider_pid, "statement": statement,
            "signature": agreements.sign(key, statement)}


def filed_sha256(saved: dict) -> str:
    """The SHA-256 the operator filed the agreement under (the signed agreement with both signatures)."""
    return entry_sha256({"agreement": saved["agreement"], "provider_signature": saved["provider_signature"],
                         "consumer_signature": saved["consumer_signature"]})


def receive(steps: Transitions, conn, msg) -> None:
    """Consumer: the provider retired an agreement (inside the sync inbox transaction)."""
    body = msg.body if isinstance(msg.body, dict) else {}
    n = store.find(conn, str(body.get("consumerPid") or ""))
    if n is None or n.role != Role.CONSUMER.value or n.space_id != msg.space_id:
        steps.refuse(conn, None, msg, EVENT, LocalText("contract.reason.retirement_unknown"))
        return
    try:
        _check(steps, conn, n, msg, body)
    except ContractError as e:
        steps.refuse(conn, n, msg, EVENT, e.args[0] if e.args else e.message("en"))
        return
    statement = body["statement"]
    now = steps.now()
    store.set_agreement(conn, n.id, now, status="retired")
    store.add_step(conn, n.id, ts=now, event=EVENT, who=msg.sender, direction="received", before=n.state,
                   after=n.state, reason=str(statement.get("reason") or "")[:500], message=body)
    steps.record(conn, action=Action.AGREEMENT_RETIRED, subject=n.id, payload={
        "by": msg.sender, "agreement": statement["agreement"], "reason": statement.get("reason"),
        "statement": statement, "signature": body["signature"]})
    steps.changed(n)


def _check(steps: Transitions, conn, n, msg, body: dict) -> None:
    if msg.sender != n.peer:
        raise ContractError(LocalText("contract.reason.retirement_not_provider"))
    saved = store.agreement(conn, n.id)
    statement = body.get("statement")
    if saved is None or not isinstance(statement, dict):
        raise ContractError(LocalText("contract.reason.retirement_unknown"))
    doc = saved["agreement"]
    if (statement.get("@type"), statement.get("agreement"), statement.get("assigner"), statement.get("assignee")) != \
            (STATEMENT, doc["@id"], msg.sender, steps.did) or doc.get("assigner") != msg.sender:
        raise ContractError(LocalText("contract.reason.retirement_mismatch"))
    if saved["status"] == "retired":
        raise ContractError(LocalText("contract.reason.already_retired"))
    agreements.verify(statement, body.get("signature"), signer_keys=steps.peer_keys(msg.sender))
