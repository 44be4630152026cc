"""A product's catalog entry is a DCAT Dataset that validates against the DSP 2025-1 dataset schema."""

import copy

import pytest

from appliance import dsp_schema
from appliance.domain import dcat
from appliance.domain.product import Offer, Product, ProductStatus, ResourcePin
from appliance.services.catalog.offers import OfferTemplates

DID = "did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH"
TEMPLATES = OfferTemplates()


def product(*offers: Offer) -> Product:
    return Product("urn:dsnode:product:1", 2, ProductStatus.LISTED, "设备运行数据", "产线传感器每分钟读数",
                   ("传感器", "sensor"), "制造", "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z",
                   (ResourcePin("urn:dsnode:resource:1", 3),), offers)


def offer(template_id: str, **params) -> Offer:
    return TEMPLATES.offer(template_id, params, f"urn:dsnode:offer:{template_id}")


def test_the_dataset_validates_and_carries_the_description_offers_and_deliveries():
    doc = dcat.dataset(product(offer("free-trial"), offer("compute-only")), DID)
    assert dsp_schema.problems(doc, dsp_schema.DATASET) == []
    assert doc["@context"] == [dcat.DSP_CONTEXT] and doc["@type"] == "Dataset"
    assert doc["dct:title"] == "设备运行数据" and doc["dcat:keyword"] == ["传感器", "sensor"]
    assert doc["dcat:version"] == "2" and doc["dct:publisher"] == {"@id": DID}
    assert [o["@id"] for o in doc["hasPolicy"]] == ["urn:dsnode:offer:free-trial", "urn:dsnode:offer:compute-only"]
    assert all("target" not in o and o["@type"] == "Offer" for o in doc["hasPolicy"])
    assert [d["format"] for d in doc["distribution"]] == [dcat.FORMAT_TRANSFER, dcat.FORMAT_COMPUTE]


def test_a_compute_only_product_offers_no_raw_transfer():
    doc = dcat.dataset(product(offer("compute-only")), DID)
    assert [d["format"] for d in doc["distribution"]] == [dcat.FORMAT_COMPUTE]


@pytest.mark.parametrize("template_id, params", [("free-trial", {}), ("internal-30d", {"region": "CN"}),
                                                 ("per-use-paid", {"price": "9.9"}), ("compute-only", {}),
                                                 ("research", {})])
def test_every_template_validates_inside_a_dataset(template_id, params):
    assert dsp_schema.problems(dcat.dataset(product(offer(template_id, **params)), DID)) == []


def _break(doc: dict, how: str) -> dict:
    doc = copy.deepcopy(doc)
    if how == "no offers":
        doc["hasPolicy"] = []
    elif how == "no distribution":
        del doc["distribution"]
    elif how == "offer with target":
        doc["hasPolicy"][0]["target"] = doc["@id"]
    elif how == "number operand":
        doc["hasPolicy"][0]["permission"][0]["constraint"][0]["rightOperand"] = 10
    elif how == "no dsp context":
        doc["@context"] = ["http://www.w3.org/ns/odrl.jsonld"]
    elif how == "unknown operator":
        doc["hasPolicy"][0]["permission"][0]["constraint"][0]["operator"] = "before"
    return doc


@pytest.mark.parametrize("how", ["no offers", "no distribution", "offer with target", "number operand",
                                 "no dsp context", "unknown operator"])
def test_a_broken_dataset_does_not_validate(how):
    good = dcat.dataset(product(offer("free-trial")), DID)
    assert dsp_schema.problems(good) == []
    assert dsp_schema.problems(_break(good, how)) != []


def test_withdrawal_notice_is_in_the_entry():
    doc = dcat.dataset(product(offer("research")), DID, valid_until="2026-02-01T00:00:00.000Z")
    assert doc["dct:valid"] == {"@value": "2026-02-01T00:00:00.000Z", "@type": "xsd:dateTime"}
    assert dsp_schema.problems(doc) == []
