"""DSP 2025-1 transfer process messages: builders, and a parser that validates a received body against
the offline schemas (appliance/dsp_schema.py) and names the ``Event`` it carries.

On the wire each body travels sealed and signed in a sync envelope of type ``dsp.transfer.<DSP type>``
on the peer's inbox topic, as negotiation's do. The consumer's TransferRequestMessage names the
agreement and a ``format``: ``dsnode+direct`` (the consumer connects to the provider's channel over
TCP; the provider's TransferStartMessage carries that endpoint as a DataAddress, ``direct_address``)
or ``dsnode+relay`` (chunks through the space's broker; no address). A TransferStartMessage from the
consumer is its request to resume a suspended transfer (``Event.RESUME``): ``parse`` tells the two
apart by who sent it.

Push (``dsnode+push``): as DSP's push transfers, the consumer's request carries the DataAddress
where the data goes (its own channel, ``direct_address`` with its process id) and the provider's
start carries none; the provider connects to that address. A push the provider asked for (push.py's
offer) names the provider's process id in the request's ``dsnode:offer`` member.

A suspension's or termination's ``reason`` is English text (what DSP peers read); a dsnode peer also
gets it as a code with its parameters (``dsnode:reason``, catalog key ``delivery.reason.<code>``), so
each side shows it in its own user's language (the same scheme as contracts/messages.py).
Extension members (outside the DSP vocabulary, allowed by the schemas): ``dsnode:manifest`` on a
start (the signed manifest, for the relay path), ``dsnode:receipt`` on the consumer's completion.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from appliance import dsp_schema, i18n
from appliance.domain.transfer import Event, Role, State
from appliance.errors import DeliveryError, LocalText, shown
from appliance.services.contracts.messages import _arg, _arg_json

CONTEXT = ["https://w3id.org/dspace/2025/1/context.jsonld"]
PREFIX = "dsp.transfer."

SCHEMAS = {
    "TransferRequestMessage": "transfer/transfer-request-message-schema.json",
    "TransferStartMessage": "transfer/transfer-start-message-schema.json",
    "TransferSuspensionMessage": "transfer/transfer-suspension-message-schema.json",
    "TransferCompletionMessage": "transfer/transfer-completion-message-schema.json",
    "TransferTerminationMessage": "transfer/transfer-termination-message-schema.json",
    "TransferProcess": "transfer/transfer-process-schema.json",  # the state, as an answer
}
TYPES = tuple(PREFIX + name for name in SCHEMAS)

DIRECT, RELAY, PUSH = "dsnode+direct", "dsnode+relay", "dsnode+push"
FORMATS = (DIRECT, RELAY, PUSH)
DIRECT_ENDPOINT = "https://w3id.org/dsnode/transfer/direct"

MANIFEST = "dsnode:manifest"  # {"manifest": …, "signature": …}
RECEIPT = "dsnode:receipt"  # {"receipt": …, "signature": …}
REASON = "dsnode:reason"  # a suspension's or termination's reason as a code and parameters
OFFER = "dsnode:offer"  # on a push request: the provider's process id of the push it offered

REASON_PREFIX = "delivery.reason."
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_MAX_ARGS, _MAX_TEXT = 8, 500  # a peer's reason is shown to a person: keep it short


def wire_type(body: dict) -> str:
    return PREFIX + body["@type"]


def _base(dsp_type: str, consumer_pid: str, provider_pid: str | None) -> dict:
    body: dict = {"@context": CONTEXT, "@type": dsp_type, "consumerPid": consumer_pid}
    if provider_pid:
        body["providerPid"] = provider_pid
    return body


def direct_address(host: str, port: int, transfer_id: str) -> dict:
    """The DataAddress of the provider's channel for one transfer (``tcp://HOST:PORT``)."""
    where = f"[{host}]" if ":" in host else host
    return {"@type": "DataAddress", "endpointType": DIRECT_ENDPOINT, "endpoint": f"tcp://{where}:{port}",
            "endpointProperties": [{"@type": "EndpointProperty", "name": "transferId", "value": transfer_id}]}


def direct_endpoint(address: object) -> tuple[str, int, str]:
    """``(host, port, transfer id)`` of a direct DataAddress; DeliveryError for anything else."""
    found = _direct(address) if isinstance(address, dict) else None
    if found is None:
        endpoint = address.get("endpoint") if isinstance(address, dict) else address
        raise DeliveryError(LocalText("delivery.reason.bad_address", shown(endpoint)))
    return found


def _direct(address: dict) -> tuple[str, int, str] | None:
    endpoint, properties = address.get("endpoint"), address.get("endpointProperties")
    if address.get("endpointType") != DIRECT_ENDPOINT or not isinstance(endpoint, str) or not isinstance(properties,
                                                                                                         list):
        return None
    try:
        url = urlsplit(endpoint)
        host, port = url.hostname, url.port
    except ValueError:  # a port out of range, a broken IPv6 literal
        return None
    ids = [p.get("value") for p in properties if isinstance(p, dict) and p.get("name") == "transferId"]
    if url.scheme != "tcp" or not host or not port or url.path or url.query or url.fragment or url.username:
        return None
    if len(ids) != 1 or not isinstance(ids[0], str) or not ids[0]:
        return None
    return host, port, ids[0]


def request(consumer_pid: str, agreement_id: str, *, format: str, callback: str,
            data_address: dict | None = None, offer: str | None = None) -> dict:
    """The consumer's request for the data of ``agreement_id`` (a push names where to put it, and
    ``offer`` the provider's process id when the provider offered the push)."""
    if format not in FORMATS:
        raise ValueError(f"unknown transfer format {format!r}")
    if format == PUSH and data_address is None:
        raise ValueError("a push request names the data address to push to")
    body = _base("TransferRequestMessage", consumer_pid, None)
    body.update({"agreementId": agreement_id, "format": format, "callbackAddress": callback})
    if data_address is not None:
        body["dataAddress"] = data_address
    if offer is not None:
        body[OFFER] = offer
    return body


def start(consumer_pid: str, provider_pid: str, data_address: dict | None = None, *,
          manifest: dict | None = None, signature: dict | None = None) -> dict:
    """The provider's start (or resume); from the consumer, its request to resume (no address)."""
    body = _base("TransferStartMessage", consumer_pid, provider_pid)
    if data_address is not None:
        body["dataAddress"] = data_address
    if manifest is not None:
        body[MANIFEST] = {"manifest": manifest, "signature": signature}
    return body


def suspension(consumer_pid: str, provider_pid: str, code: str, reason: str | LocalText) -> dict:
    return _with_reason(_base("TransferSuspensionMessage", consumer_pid, provider_pid), code, reason)


def completion(consumer_pid: str, provider_pid: str, *, receipt: dict | None = None,
               signature: dict | None = None) -> dict:
    body = _base("TransferCompletionMessage", consumer_pid, provider_pid)
    if receipt is not None:
        body[RECEIPT] = {"receipt": receipt, "signature": signature}
    return body


def termination(consumer_pid: str, provider_pid: str, code: str, reason: str | LocalText) -> dict:
    """Both pids are real ones (DSP requires both). A ``reason`` a person typed goes as it is; one of
    ours (``LocalText``) also as its code."""
    if not consumer_pid or not provider_pid:
        raise ValueError("a termination names both transfers")
    return _with_reason(_base("TransferTerminationMessage", consumer_pid, provider_pid), code, reason)


def process(consumer_pid: str, provider_pid: str, state: State) -> dict:
    """The TransferProcess document: where a transfer stands (the answer to a peer that asks)."""
    if state is State.INITIAL:
        raise ValueError("a transfer process that was never requested has no DSP state")
    body = _base("TransferProcess", consumer_pid, provider_pid)
    body["state"] = state.value
    return body


def _with_reason(body: dict, code: str, reason: str | LocalText) -> dict:
    body["code"] = code
    body["reason"] = [str(reason)]
    if isinstance(reason, LocalText) and reason.key.startswith(REASON_PREFIX):
        body[REASON] = {"code": reason.key.removeprefix(REASON_PREFIX), "args": [_arg_json(a) for a in reason.args]}
    return body


def reason_of(body: object) -> LocalText | None:
    """The coded reason of a suspension or termination, when it names one this node knows (else None)."""
    coded = body.get(REASON) if isinstance(body, dict) else None
    if not isinstance(coded, dict) or not isinstance(coded.get("code"), str) or not _CODE.fullmatch(coded["code"]):
        return None
    key, args = REASON_PREFIX + coded["code"], coded.get("args", [])
    if i18n.lookup(key, "en") is None or not isinstance(args, list) or len(args) > _MAX_ARGS:
        return None
    if not all(_plain(a) or (isinstance(a, list) and len(a) <= _MAX_ARGS and all(map(_plain, a))) for a in args):
        return None
    try:
        return LocalText(key, *(_arg(a) for a in args))
    except ValueError:
        return None


def _plain(arg: object) -> bool:
    """A reason parameter a person can read: a text, a number that prints, or a text in both languages."""
    if isinstance(arg, bool):
        return False
    if isinstance(arg, int):
        return abs(arg) < 2**53
    return isinstance(arg, (str, float)) or (isinstance(arg, dict) and len(arg) <= 2)


def reason_text(body: dict) -> str:
    """A reason's words as received (DSP lets them be any JSON: what is not text is named by its type)."""
    reasons = body.get("reason") or []
    text = "; ".join(r if isinstance(r, str) else shown(r) for r in reasons[:_MAX_ARGS])
    return text[:_MAX_TEXT] or str(body.get("code", ""))[:_MAX_TEXT]


def problems(body: object) -> list[str]:
    """Why ``body`` is not a valid DSP transfer process message ([] when it is)."""
    if not isinstance(body, dict) or not isinstance(body.get("@type"), str) or body["@type"] not in SCHEMAS:
        return ["(root): not a DSP transfer process message"]
    return dsp_schema.problems(body, SCHEMAS[body["@type"]])


def _refuse_invalid(body: object) -> None:
    found = problems(body)
    if found:
        raise DeliveryError(LocalText("delivery.reason.not_dsp", "; ".join(found[:3])))


def parse(body: object, sender: Role | None = None) -> tuple[Event, dict]:
    """The event a received message carries and its fields; DeliveryError when it does not validate.

    ``sender`` is the role of the node that sent it: a TransferStartMessage from the consumer is its
    request to resume (``Event.RESUME``). The fields: ``consumer_pid``, ``provider_pid`` (None on a
    request), and per message ``agreement_id``, ``format``, ``callback``, ``data_address`` (request,
    start: None when absent), ``offer`` (request: the provider's pid of a push it offered, or None),
    ``manifest`` (start), ``code`` and ``reason`` (suspension, termination: the coded reason as a
    ``LocalText`` when this node knows it, else the text), ``receipt`` (completion). ``manifest``
    and ``receipt`` are ``{"manifest"|"receipt": …, "signature": …}`` or None, unchecked:
    manifest.py verifies them."""
    _refuse_invalid(body)
    assert isinstance(body, dict)
    dsp_type = body["@type"]
    if dsp_type == "TransferProcess":
        raise DeliveryError(LocalText("delivery.reason.unexpected", dsp_type))
    event = Event.RESUME if dsp_type == "TransferStartMessage" and sender is Role.CONSUMER else Event(dsp_type)
    fields: dict = {"consumer_pid": body["consumerPid"], "provider_pid": body.get("providerPid")}
    if event is Event.REQUEST:
        offer = body.get(OFFER)
        fields.update(agreement_id=body["agreementId"], format=body["format"], callback=body["callbackAddress"],
                      data_address=body.get("dataAddress"), offer=offer if isinstance(offer, str) else None)
    elif event in (Event.START, Event.RESUME):
        fields.update(data_address=body.get("dataAddress"), manifest=_extension(body, MANIFEST, "manifest"))
    elif event in (Event.SUSPEND, Event.TERMINATE):
        fields.update(code=str(body.get("code", ""))[:_MAX_TEXT], reason=reason_of(body) or reason_text(body))
    elif event is Event.COMPLETE:
        fields["receipt"] = _extension(body, RECEIPT, "receipt")
    return event, fields


def parse_process(body: object) -> dict:
    """The fields of a TransferProcess: ``consumer_pid``, ``provider_pid``, ``state`` (a ``State``)."""
    _refuse_invalid(body)
    assert isinstance(body, dict)
    if body["@type"] != "TransferProcess":
        raise DeliveryError(LocalText("delivery.reason.unexpected", body["@type"]))
    return {"consumer_pid": body["consumerPid"], "provider_pid": body["providerPid"], "state": State(body["state"])}


def _extension(body: dict, member: str, name: str) -> dict | None:
    value = body.get(member)
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get(name), dict):
        raise DeliveryError(LocalText("delivery.reason.extension", member))
    return {name: value[name], "signature": value.get("signature")}
