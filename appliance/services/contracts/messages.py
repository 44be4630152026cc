"""DSP 2025-1 contract negotiation messages: builders, and a parser that validates a received body
against the offline schemas (appliance/dsp_schema.py) and names the ``Event`` it carries.

On the wire each body travels sealed and signed in a sync envelope of type
``dsnode.contract.<DSP type>`` on the peer's inbox topic (docs/protocol.md).

A termination's ``reason`` is English text (what DSP peers read); a dsnode peer also gets the reason
as a code with its parameters (``dsnode:reason``: ``{"code": "timed_out", "args": ["REQUESTED"]}``,
the catalog key ``contract.reason.<code>``), so each side shows it in its own user's language. A
parameter that is itself a text in words travels in both languages (``{"zh_CN": …, "en": …}``).
"""

from __future__ import annotations

import re
import uuid

from appliance import dsp_schema, i18n
from appliance.domain.negotiation import Event
from appliance.errors import ContractError, LocalText

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
REASON = "dsnode:reason"  # a termination's reason as a code and parameters

REASON_PREFIX = "contract.reason."
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_MAX_ARGS, _MAX_TEXT = 8, 500  # a peer's reason is shown to a person: keep it short


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


def termination(consumer_pid: str, provider_pid: str, code: str, reason: str | LocalText) -> dict:
    """Both pids are real ones (DSP requires both, and the peer matches the message by them): a
    node that does not know its peer's pid yet tells it when the peer's next message names it.
    A ``reason`` a person typed goes as it is; one of ours (``LocalText``) also as its code."""
    if not consumer_pid or not provider_pid:
        raise ValueError("a termination names both negotiations")
    body = _base("ContractNegotiationTerminationMessage", consumer_pid, provider_pid)
    body["code"] = code
    body["reason"] = [str(reason)]
    if isinstance(reason, LocalText) and reason.key.startswith(REASON_PREFIX):
        body[REASON] = {"code": reason.key.removeprefix(REASON_PREFIX), "args": [_arg_json(a) for a in reason.args]}
    return body


def _arg_json(arg: object) -> object:
    if isinstance(arg, (list, tuple)):
        return [_arg_json(a) for a in arg]
    if hasattr(arg, "message"):  # words (a reason, an ODRL failure): the peer picks its language
        return {"zh_CN": arg.message("zh_CN"), "en": arg.message("en")}
    return arg if isinstance(arg, (int, float)) and not isinstance(arg, bool) else str(arg)


class Words:
    """A parameter of a peer's reason given in both languages."""

    def __init__(self, zh: str, en: str) -> None:
        self.zh, self.en = zh, en

    def message(self, lang: str | None = None) -> str:
        return self.en if (lang or i18n.get_lang()) == "en" else self.zh

    def __str__(self) -> str:
        return self.en


def _arg(value: object) -> object:
    if isinstance(value, list):
        return tuple(_arg(v) for v in value[:_MAX_ARGS])
    if isinstance(value, dict):
        zh, en = value.get("zh_CN"), value.get("en")
        if not isinstance(zh, str) or not isinstance(en, str):
            raise ValueError("not a text in both languages")
        return Words(zh[:_MAX_TEXT], en[:_MAX_TEXT])
    if isinstance(value, str):
        return value[:_MAX_TEXT]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    raise ValueError("not a reason parameter")


def reason_of(body: object) -> LocalText | None:
    """The coded reason of a termination, when it names one this node knows (else None: show the text)."""
    coded = body.get(REASON) if isinstance(body, dict) else None
    if not isinstance(coded, dict) or not isinstance(coded.get("code"), str) or not _CODE.fullmatch(coded["code"]):
        return None
    key, args = REASON_PREFIX + coded["code"], coded.get("args", [])
    if i18n.lookup(key, "en") is None or not isinstance(args, list) or len(args) > _MAX_ARGS:
        return None
    try:
        return LocalText(key, *(_arg(a) for a in args))
    except ValueError:
        return None


def problems(body: object) -> list[str]:
    """Why ``body`` is not a valid DSP negotiation message ([] when it is)."""
    if not isinstance(body, dict) or not isinstance(body.get("@type"), str) or body["@type"] not in SCHEMAS:
        return ["(root): not a DSP contract negotiation message"]
    return dsp_schema.problems(body, SCHEMAS[body["@type"]])


def parse(body: object) -> Event:
    """The event a received body carries; ContractError when it does not validate."""
    found = problems(body)
    if found:
        raise ContractError(LocalText("contract.reason.not_dsp", "; ".join(found[:3])))
    assert isinstance(body, dict)  # problems() says so of anything else
    dsp_type = body["@type"]
    if dsp_type == "ContractNegotiationEventMessage":
        return Event(f"{dsp_type}:{body['eventType']}")
    return Event(dsp_type)


def reason_text(body: dict) -> str:
    reasons = body.get("reason") or []
    return "; ".join(str(r) for r in reasons) or str(body.get("code", ""))


def new_pid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


_ANSWER_PIDS = uuid.UUID("6c1f0d2e-3b7a-5e49-9a0c-2f8d4b1e7a53")


def answer_pid(starter: str, starter_pid: str, answerer: str) -> str:
    """The pid a node gives a negotiation another node started (a request or an offer): derived
    from both nodes and the starter's pid, so the starter knows it before any answer arrives and
    can name it in a termination (DSP messages after the first carry both pids)."""
    return f"urn:uuid:{uuid.uuid5(_ANSWER_PIDS, f'{starter} {starter_pid} {answerer}')}"
