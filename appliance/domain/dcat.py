"""A product as a DCAT ``Dataset`` in JSON-LD, shaped for the Dataspace Protocol 2025-1 catalog.

The DSP context (``https://w3id.org/dspace/2025/1/context.jsonld``) defines ``Dataset``,
``hasPolicy``, ``distribution``, ``Distribution``, ``format``, ``accessService`` and the prefixes
``dct``, ``dcat``, ``odrl``, ``xsd``; the dataset schema requires ``@id``, ``hasPolicy`` (offers,
without ``target``) and ``distribution`` (``format`` and ``accessService``). Mapping:

    product.id -> @id                  title -> dct:title         description -> dct:description
    keywords -> dcat:keyword           domain -> dcat:theme       version -> dcat:version
    created/updated -> dct:issued/dct:modified (xsd:dateTime)      node did -> dct:publisher
    offers -> hasPolicy (ODRL Offers)  notice end -> dct:valid (only while being withdrawn)
    distributions: peer transfer of the data when an offer lets raw data go, compute-to-data when
    an offer is aggregate-only; both served by the node (accessService = its did).
"""

from __future__ import annotations

from appliance.domain import odrl
from appliance.domain.odrl.vocab import AGGREGATE_ONLY, RAW_ACTIONS
from appliance.domain.product import Product

DSP_CONTEXT = "https://w3id.org/dspace/2025/1/context.jsonld"
FORMAT_TRANSFER = "urn:dsnode:format:peer-transfer"  # delivered over direct TCP or relayed over MQTT
FORMAT_COMPUTE = "urn:dsnode:format:compute"  # computation at the provider, aggregated results only


def _datetime(value: str) -> dict:
    return {"@value": value, "@type": "xsd:dateTime"}


def formats(product: Product) -> list[str]:
    """The delivery formats the product's offers allow (transfer, compute, or both)."""
    actions = {rule.action for offer in product.offers for rule in offer.policy.permissions}
    out = []
    if actions & RAW_ACTIONS:
        out.append(FORMAT_TRANSFER)
    if AGGREGATE_ONLY in actions:
        out.append(FORMAT_COMPUTE)
    return out


def dataset(product: Product, publisher: str, *, valid_until: str | None = None) -> dict:
    """The DSP ``Dataset`` of ``product`` published by node ``publisher`` (a did)."""
    doc: dict = {
        "@context": [DSP_CONTEXT],
        "@id": product.id,
        "@type": "Dataset",
        "dct:title": product.title,
    }
    if product.description:
        doc["dct:description"] = product.description
    if product.keywords:
        doc["dcat:keyword"] = list(product.keywords)
    if product.domain:
        doc["dcat:theme"] = product.domain
    doc["dcat:version"] = str(product.version)
    doc["dct:publisher"] = {"@id": publisher}
    if product.created:
        doc["dct:issued"] = _datetime(product.created)
    if product.updated:
        doc["dct:modified"] = _datetime(product.updated)
    if valid_until:
        doc["dct:valid"] = _datetime(valid_until)
    doc["hasPolicy"] = [odrl.to_jsonld(offer.policy, context=False) for offer in product.offers]
    doc["distribution"] = [{"@type": "Distribution", "format": f, "accessService": publisher}
                           for f in formats(product)]
    return doc
