"""Transfer process messages: every builder validates against the DSP 2025-1 schemas, without a network."""

from __future__ import annotations

import pytest

from appliance import dsp_schema
from appliance.domain.transfer import Event, Role, State
from appliance.errors import DeliveryError, LocalText
from appliance.services.delivery import messages

ADDRESS = messages.direct_address("10.77.0.1", 40123, "urn:uuid:t1")


def test_every_builder_validates_against_the_dsp_schemas_and_names_its_event():
    built = [
        (messages.request("c1", "urn:a:1", format=messages.DIRECT, callback="mqtt:inbox/x"), None, Event.REQUEST),
        (messages.request("c1", "urn:a:1", format=messages.RELAY, callback="mqtt:inbox/x", data_address=ADDRESS),
         Role.CONSUMER, Event.REQUEST),
        (messages.request("c1", "urn:a:1", format=messages.PUSH, callback="mqtt:inbox/x", data_address=ADDRESS,
                          offer="urn:uuid:p1"), Role.CONSUMER, Event.REQUEST),
        (messages.start("c1", "p1", ADDRESS), Role.PROVIDER, Event.START),
        (messages.start("c1", "p1"), Role.PROVIDER, Event.START),
        (messages.start("c1", "p1"), Role.CONSUMER, Event.RESUME),
        (messages.suspension("c1", "p1", "paused", "暂停一下"), Role.CONSUMER, Event.SUSPEND),
        (messages.completion("c1", "p1"), Role.PROVIDER, Event.COMPLETE),
        (messages.termination("c1", "p1", "cancelled", "不再需要"), Role.CONSUMER, Event.TERMINATE),
    ]
    for body, sender, event in built:
        assert messages.problems(body) == [], body
        assert messages.parse(body, sender)[0] is event
        assert messages.wire_type(body) == "dsp.transfer." + body["@type"]
        assert messages.wire_type(body) in messages.TYPES
    assert dsp_schema.problems(ADDRESS, "transfer/data-address-schema.json") == []
    process = messages.process("c1", "p1", State.SUSPENDED)
    assert messages.problems(process) == []
    assert messages.parse_process(process) == {"consumer_pid": "c1", "provider_pid": "p1", "state": State.SUSPENDED}


def test_parse_gives_each_messages_fields():
    _, fields = messages.parse(messages.request("c1", "urn:a:1", format=messages.DIRECT, callback="mqtt:inbox/x"))
    assert fields == {"consumer_pid": "c1", "provider_pid": None, "agreement_id": "urn:a:1",
                      "format": "dsnode+direct", "callback": "mqtt:inbox/x", "data_address": None, "offer": None}
    _, fields = messages.parse(messages.request("c1", "urn:a:1", format=messages.PUSH, callback="mqtt:inbox/x",
                                                data_address=ADDRESS, offer="urn:uuid:p1"))
    assert (fields["format"], fields["data_address"], fields["offer"]) == ("dsnode+push", ADDRESS, "urn:uuid:p1")
    with pytest.raises(ValueError):  # a push names where the data goes (DSP: the request's dataAddress)
        messages.request("c1", "urn:a:1", format=messages.PUSH, callback="mqtt:inbox/x")
    manifest, signature = {"transferId": "urn:uuid:t1"}, {"signature": "c2ln"}
    event, fields = messages.parse(messages.start("c1", "p1", ADDRESS, manifest=manifest, signature=signature),
                                   Role.PROVIDER)
    assert event is Event.START and fields["data_address"] == ADDRESS
    assert fields["manifest"] == {"manifest": manifest, "signature": signature}
    assert messages.direct_endpoint(fields["data_address"]) == ("10.77.0.1", 40123, "urn:uuid:t1")
    receipt = {"transferId": "urn:uuid:t1"}
    _, fields = messages.parse(messages.completion("c1", "p1", receipt=receipt, signature=signature))
    assert fields["receipt"] == {"receipt": receipt, "signature": signature}
    _, fields = messages.parse(messages.termination("c1", "p1", "cancelled", "不再需要"))
    assert (fields["code"], fields["reason"]) == ("cancelled", "不再需要")


def test_an_invalid_body_is_refused_with_the_schema_problem():
    with pytest.raises(DeliveryError, match="consumerPid") as caught:
        messages.parse({"@context": messages.CONTEXT, "@type": "TransferCompletionMessage", "providerPid": "p1"})
    assert caught.value.exit_code == 150
    assert caught.value.message("en").startswith(
        "The delivery cannot go ahead: the message does not follow the Dataspace Protocol (DSP): ")
    assert caught.value.message("zh_CN").startswith("交付无法继续：消息不符合数据空间协议（DSP）：")
    broken_request = messages.request("c1", "urn:a:1", format=messages.DIRECT, callback="mqtt:inbox/x")
    del broken_request["agreementId"]
    with pytest.raises(DeliveryError, match="agreementId"):
        messages.parse(broken_request)
    broken_start = messages.start("c1", "p1", {**ADDRESS, "@type": "Address"})
    with pytest.raises(DeliveryError, match="DataAddress"):
        messages.parse(broken_start, Role.PROVIDER)
    for junk in ({"@type": "Nonsense"}, [], "TransferStartMessage", {"@type": ["TransferStartMessage"]}):
        with pytest.raises(DeliveryError, match="not a DSP transfer process message"):
            messages.parse(junk)
    with pytest.raises(DeliveryError, match="TransferProcess was not expected"):
        messages.parse(messages.process("c1", "p1", State.STARTED))
    with pytest.raises(DeliveryError, match="TransferStartMessage was not expected"):
        messages.parse_process(messages.start("c1", "p1"))
    with pytest.raises(DeliveryError, match="dsnode:manifest"):
        messages.parse({**messages.start("c1", "p1"), messages.MANIFEST: ["x"]}, Role.PROVIDER)


def test_a_data_address_that_is_not_a_direct_one_is_refused():
    assert messages.direct_endpoint(messages.direct_address("::1", 7, "t")) == ("::1", 7, "t")
    bad = [
        {**ADDRESS, "endpointType": "https://w3id.org/idsa/v4.1/HTTP"},
        {**ADDRESS, "endpoint": "http://10.77.0.1:40123"},
        {**ADDRESS, "endpoint": "tcp://10.77.0.1"},
        {**ADDRESS, "endpoint": "tcp://10.77.0.1:99999"},
        {**ADDRESS, "endpoint": "tcp://10.77.0.1:40123/x"},
        {**ADDRESS, "endpointProperties": []},
        {**ADDRESS, "endpointProperties": ADDRESS["endpointProperties"] * 2},
        {k: v for k, v in ADDRESS.items() if k != "endpoint"},
        None, "tcp://10.77.0.1:40123",
    ]
    for address in bad:
        with pytest.raises(DeliveryError) as caught:
            messages.direct_endpoint(address)
        assert "not a direct dsnode address" in caught.value.message("en"), address
    zh = caught.value.message("zh_CN")
    assert zh.startswith("交付无法继续：数据地址 'tcp://10.77.0.1:40123' 不是 dsnode 直连地址")


def test_a_coded_reason_is_rendered_by_each_side_in_its_language():
    reason = LocalText("delivery.reason.received_differs", "ab" * 32, "cd" * 32)
    body = messages.termination("c1", "p1", "corrupt", reason)
    assert messages.problems(body) == []
    assert body["reason"] == [f"the data received has SHA-256 {'ab' * 32}, and the manifest says {'cd' * 32}"]
    assert body[messages.REASON] == {"code": "received_differs", "args": ["ab" * 32, "cd" * 32]}
    _, fields = messages.parse(body, Role.CONSUMER)
    assert fields["reason"].message("zh_CN") == f"收到的数据 SHA-256 为 {'ab' * 32}，清单记载为 {'cd' * 32}"
    suspended = messages.suspension("c1", "p1", "paused", LocalText("delivery.reason.unexpected", "x"))
    assert messages.reason_of(suspended).message("en") == "a x was not expected here"
    for junk in ({"code": "no_such_reason"}, {"code": "../x"}, {"code": "unexpected", "args": [{"x": 1}]},
                 {"code": "unexpected", "args": "x"}, "unexpected"):
        assert messages.reason_of({**body, messages.REASON: junk}) is None, junk


def test_builders_refuse_what_no_peer_could_use():
    with pytest.raises(ValueError):
        messages.request("c1", "urn:a:1", format="HttpData-PULL", callback="mqtt:inbox/x")
    with pytest.raises(ValueError):
        messages.termination("c1", "", "x", "y")
    with pytest.raises(ValueError):
        messages.process("c1", "p1", State.INITIAL)
