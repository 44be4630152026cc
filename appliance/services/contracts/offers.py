"""Offers as they travel in negotiation messages: a catalog entry's listed offers, and any offer
made into a DSP MessageOffer (``@type`` Offer, an ``@id``, the dataset as ``target``)."""

from __future__ import annotations

import uuid


def listed_offers(entry: dict, dataset_id: str) -> list[dict]:
    """The offers of a catalog entry, as DSP MessageOffers (an offer without @id gets a stable one)."""
    if isinstance(entry, dict) and isinstance(entry.get("entry"), dict):  # a cached catalog body
        entry = entry["entry"]
    raw = entry.get("hasPolicy", entry.get("odrl:hasPolicy", [])) if isinstance(entry, dict) else []
    raw = raw if isinstance(raw, list) else [raw]
    out = []
    for i, o in enumerate(x for x in raw if isinstance(x, dict)):
        offer = dict(o)
        offer.setdefault("@id", f"urn:offer:{dataset_id}:{i}")
        out.append(message_offer(offer, dataset_id))
    return out


def message_offer(offer: dict, dataset_id: str) -> dict:
    """``offer`` as a DSP MessageOffer: @type Offer, an @id and the dataset as target."""
    doc = {k: v for k, v in offer.items() if k not in ("@context",)}
    doc["@type"] = "Offer"
    doc.setdefault("@id", f"urn:uuid:{uuid.uuid4()}")
    doc["target"] = dataset_id
    return doc
