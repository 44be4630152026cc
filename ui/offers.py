"""A catalog entry's offers, and one offer's terms in plain words (the core's ODRL summary)."""

from __future__ import annotations

from appliance.domain import odrl
from appliance.errors import ApplianceError
from appliance.i18n import get_lang
from appliance.services.contracts.offers import listed_offers


def offers_of(entry: dict, dataset_id: str) -> list[dict]:
    return listed_offers(entry, dataset_id)


def summary(offer: dict) -> str:
    """What the offer allows, forbids and requires; what is wrong with it when it cannot be read."""
    try:
        return odrl.summarize(odrl.parse(offer), get_lang())
    except ApplianceError as e:
        return e.message()
