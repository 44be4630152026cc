"""Offer templates from ``assets/templates/offers/`` and turning them (or JSON-LD) into offers.

    templates = OfferTemplates()
    offer = templates.offer("per-use-paid", {"price": "5"}, uid)        # OfferTemplateError, PolicyInvalid
    template_id, params = parse_spec("per-use-paid:price=5,uses=100")    # the CLI's --offer syntax
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

from appliance.domain import odrl
from appliance.domain.odrl import OfferTemplate, TemplateParamError
from appliance.domain.product import Offer
from appliance.errors import LocalText, OfferTemplateError
from appliance.resources import assets_dir


class OfferTemplates:
    def __init__(self, folder: Path | None = None) -> None:
        self._folder = Path(folder) if folder else assets_dir() / "templates" / "offers"

    @cached_property
    def _templates(self) -> dict[str, OfferTemplate]:
        out = {}
        for path in sorted(self._folder.glob("*.json")):
            template = OfferTemplate.from_json(json.loads(path.read_text(encoding="utf-8")))
            out[template.id] = template
        return out

    def all(self) -> list[OfferTemplate]:
        return list(self._templates.values())

    def get(self, template_id: str) -> OfferTemplate:
        try:
            return self._templates[template_id]
        except KeyError:
            raise OfferTemplateError(template_id, LocalText("product.reason.no_template",
                                                            ", ".join(self._templates))) from None

    def offer(self, template_id: str, params: dict, uid: str) -> Offer:
        """A valid offer from a template; OfferTemplateError for parameters, PolicyInvalid for contradictions."""
        template = self.get(template_id)
        try:
            policy, used = odrl.instantiate(template, params, uid)
        except TemplateParamError as e:
            raise OfferTemplateError(template_id, e.problem) from None
        return Offer(uid, odrl.check(policy), template_id, used)


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``TEMPLATE[:name=value,…]`` -> (template id, parameters)."""
    template_id, _, rest = spec.partition(":")
    params: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise OfferTemplateError(template_id.strip(), LocalText("product.reason.bad_param", part))
        params[name.strip()] = value.strip()
    return template_id.strip(), params
