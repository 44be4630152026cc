"""DSP 2025-1 contract negotiation messages: builders, and a parser that validates a received body
against the offline schemas (appliance/dsp_schema.py) and names the ``Event`` it carries.

On the wire each body travels sealed and signed in a sync envelope of type
``dsnode.contract.<DSP type>`` on the peer's inbox topic (docs/protocol.md).
"""

from __future__ import annotations

from appliance import dsp_schema
from appliance.domain.negotiation import Event
from appliance.errors import ContractError

CONTEXT = ["https://w3id.org/dspace/2025/1/context.jsonld"]
PREFIX = "dsnode.contract."

SCHEMAS = {
    "ContractRequestMessage": "negotiation/contract-request-message-schema.json",
    "ContractOfferMessage": "negotiation/contract-offer-message-schema.json",
    "ContractNegotiationEventMessage": "negotiation/contract-negotiation-event-message-schema.json",
    "ContractAgreementMessage": "negotiation/contract-agreement-message-schema.json",
    "ContractAgreementVerificationMessage": "negotiation/contract-agreement-verification-message-schema.json",
    "ContractNegotiationTerminationMessage": "negotiation/contract-negotiation-termination-message-schema.json",
}
TYPES = tuple(PREFIX + name for name in SCHEMAS)

# Extension members (outside the DSP vocabulary, allowed by the schemas): detached signatures.
PROVIDER_SIG = "dsnode:providerSignature"
CONSUMER_SIG = "dsnode:consumerSignature"


def wire_type(body: dict) -> str:
    return PREFIX + body["@type"]


def _base(dsp_type: str, consumer_pid: str | None, provider_pid: str | None) -> dict:
    body: dict = {"@context": CONTEXT, "@type": dsp_type}
    if consumer_pid:
        body["consumerPid"] = consumer_pid
    if provider_pid:
        body["providerPid"] = provider_pid
    return body


def request(consumer_pid: str, provider_pid: str | None, offer: dict, callback: str) -> dict:
    body = _base("ContractRequestMessage", consumer_pid, provider_pid)
    body["offer"] = offer
    if not provider_pid:
        body["callbackAddress"] = callback
    return body


def offer(provider_pid: str, consumer_pid: str | None, offer_doc: dict, callback: str) -> dict:
    body = _base("ContractOfferMessage", consumer_pid, provider_pid)
    body["offer"] = offer_doc
    if not consumer_pid:
        body["callbackAddress"] = callback
    return body


def event(consumer_pid: str, provider_pid: str, event_type: str) -> dict:
    body = _base("ContractNegotiationEventMessage", consumer_pid, provider_pid)
    body["eventType"] = event_type
    return body


def agreement(consumer_pid: str, provider_pid: str, agreement_doc: dict, signature: dict) -> dict:
    body = _base("ContractAgreementMessage", consumer_pid, provider_pid)
    body["agreement"] = agreement_doc
    body[PROVIDER_SIG] = signature
    return body


def verification(consumer_pid: str, provider_pid: str, signature: dict) -> dict:
    body = _base("ContractAgreementVerificationMessage", consumer_pid, provider_pid)
    body[CONSUMER_SIG] = signature
    return body


def termination(consumer_pid: str, provider_pid: str, code: str, reason: str) -> dict:
    """Both pids are real ones (DSP requires both, and the peer matches the message by them): a
    node that does not know its peer's pid yet tells it when the peer's next message names it."""
    if not consumer_pid or not provider_pid:
        raise ValueError("a termination names both negotiations")
    body = _base("ContractNegotiationTerminationMessage", consumer_pid, provider_pid)
    body["code"] = code
    body["reason"] = [reason]
    return body


def problems(body: object) -> list[str]:
    """Why ``body`` is not a valid DSP negotiation message ([] when it is)."""
    if not isinstance(body, dict) or not isinstance(body.get("@type"), str) or body["@type"] not in SCHEMAS:
        return ["(root): not a DSP contract negotiation message"]
    return dsp_schema.problems(body, SCHEMAS[body["@type"]])


def parse(body: object) -> Event:
    """The event a received body carries; ContractError when it does not validate."""
    found = problems(body)
    if found:
        raise ContractError("the message does not follow the Dataspace Protocol: " + "; ".join(found[:3]))
    dsp_type = body["@type"]
    if dsp_type == "ContractNegotiationEventMessage":
        return Event(f"{dsp_type}:{body['eventType']}")
    return Event(dsp_type)


def reason_text(body: dict) -> str:
    reasons = body.get("reason") or []
    return "; ".join(str(r) for r in reasons) or str(body.get("code", ""))
