"""The compiled DSP schema check (the fast path of dsp_schema.problems) agrees with jsonschema: on
every message the nodes build and on thousands of broken variants of them."""

from __future__ import annotations

import copy

import pytest

from appliance import dsp_schema
from appliance.crypto.keys import SigningKey
from appliance.domain import dcat
from appliance.domain.product import Product, ProductStatus, ResourcePin
from appliance.services.catalog.offers import OfferTemplates
from appliance.services.contracts import agreement as agreements
from appliance.services.contracts import messages

DID = "did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH"
CONSTRAINED = {"@id": "urn:offer:2", "@type": "Offer", "target": "ds-1", "permission": [{
    "action": "use", "constraint": [
        {"leftOperand": "purpose", "operator": "eq", "rightOperand": "research"},
        {"and": [{"leftOperand": "spatial", "operator": "eq", "rightOperand": "CN"},
                 {"or": [{"leftOperand": "dateTime", "operator": "lt", "rightOperand": "2027-01-01T00:00:00Z"}]}]}]}],
    "obligation": [{"action": "compensate"}], "prohibition": [{"action": "distribute"}]}
SIMPLE = {"@id": "urn:offer:1", "@type": "Offer", "target": "ds-1", "permission": [{"action": "use"}]}
SUBSTITUTES = (None, True, 1, 1.5, "x", [], ["x"], [{}], {}, ["https://w3id.org/dspace/2025/1/context.jsonld"])


def message_bodies() -> list[dict]:
    key = SigningKey.generate()
    out = []
    for offer in (SIMPLE, CONSTRAINED):
        doc = agreements.build(offer, agreement_id="urn:a:1", target="ds-1", assigner="did:p", assignee="did:c",
                               timestamp="2026-11-22T10:00:00.000Z")
        request = messages.request("c1", None, offer, callback="mqtt:inbox/x")
        request["dsnode:useContext"] = {"purpose": "research"}
        out += [request, messages.offer("p1", "c1", offer, callback=""),
                messages.agreement("c1", "p1", doc, agreements.sign(key, doc))]
    out += [messages.request("c1", "p1", SIMPLE, callback=""),
            messages.offer("p1", None, SIMPLE, callback="mqtt:inbox/y")]
    out += [messages.event("c1", "p1", "ACCEPTED"), messages.event("c1", "p1", "FINALIZED"),
            messages.verification("c1", "p1", {"type": "Ed25519Signature2020-jcs", "signature": "AA=="}),
            messages.termination("c1", "p1", "rejected", "不在服务区域")]
    return out


def datasets() -> list[dict]:
    templates = OfferTemplates()
    offers = [templates.offer(t, p, f"urn:dsnode:offer:{t}") for t, p in (
        ("internal-30d", {"region": "CN"}),)]
    product = Product("urn:dsnode:product:1", 2, ProductStatus.LISTED, "设备运行数据", "产线传感器每分钟读数",
                      ("传感器",), "制造", "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z",
                      (ResourcePin("urn:dsnode:resource:1", 3),), tuple(offers))
    return [dcat.dataset(product, DID)]


def variants(doc: object):
    """``doc`` with one change: each member removed, each value replaced by each substitute."""
    yield doc
    if isinstance(doc, dict):
        items = list(doc.items())
    elif isinstance(doc, list):
        items = list(enumerate(doc))
    else:
        return
    for k, v in items:
        if isinstance(doc, dict):
            smaller = dict(doc)
            del smaller[k]
        else:
            smaller = doc[:k] + doc[k + 1:]
        yield smaller
        for s in SUBSTITUTES:
            changed = copy.copy(doc)
            changed[k] = s
            yield changed
        for inner in variants(v):
            if inner is v:
                continue
            changed = copy.copy(doc)
            changed[k] = inner
            yield changed


def agree(doc: object, name: str) -> bool:
    """Assert the compiled check and jsonschema agree on ``doc``; return whether it is valid."""
    valid = dsp_schema.validator(name).is_valid(doc)
    assert dsp_schema.compiled(name)(doc) == valid, (name, doc)
    return valid


@pytest.mark.parametrize("name", sorted(set(messages.SCHEMAS.values())) + [dsp_schema.DATASET, dsp_schema.POLICY])
def test_every_schema_the_nodes_use_compiles(name):
    assert dsp_schema.compiled(name) is not None


def test_the_compiled_check_agrees_with_jsonschema_on_messages_and_their_broken_variants():
    checked = invalid = 0
    for body in message_bodies():
        name = messages.SCHEMAS[body["@type"]]
        assert dsp_schema.compiled(name)(body), body
        for variant in variants(body):
            invalid += not agree(variant, name)
            checked += 1
        agree(body, messages.SCHEMAS["ContractRequestMessage"])  # and against another type
    assert checked > 2000 and invalid > checked // 4


def test_the_compiled_check_agrees_with_jsonschema_on_datasets_and_policies():
    for doc in datasets():
        assert dsp_schema.compiled(dsp_schema.DATASET)(doc)
        for variant in variants(doc):
            agree(variant, dsp_schema.DATASET)
    for variant in variants(CONSTRAINED):
        agree(variant, dsp_schema.POLICY)


def test_a_rejected_document_gets_jsonschemas_messages():
    body = messages.event("c1", "p1", "FINALIZED")
    del body["consumerPid"]
    problems = dsp_schema.problems(body, messages.SCHEMAS[body["@type"]])
    assert problems == ["(root): 'consumerPid' is a required property"]
