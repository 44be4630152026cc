"""Offer templates: a policy with ``{name}`` placeholders and typed parameters with defaults.

A template (``assets/templates/offers/<id>.json``)::

    {"id": "free-trial", "title": {"zh_CN": …, "en": …}, "description": {…},
     "parameters": {"days": {"type": "integer", "default": 7, "min": 1, "max": 365, "label": {…}}, …},
     "policy": {"permission": [{"action": "use", "constraint": [
         {"leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": "P{days}D"}]}], …}}

Parameter types: ``integer`` (min, max), ``decimal`` (min, exclusive of 0 unless said), ``region``
(ISO 3166 code such as ``CN`` or ``CN-SH``), ``text``. A parameter whose default is ``null`` is
optional: when it is not given, every constraint that mentions it is left out (only constraints:
a rule or duty must not depend on an optional parameter).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from appliance.domain.odrl.jsonld import from_jsonld
from appliance.domain.odrl.model import Policy
from appliance.domain.odrl.text import Problem, pick

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_REGION = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,3})?")


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: object = None
    min: object = None
    max: object = None
    label: dict | None = None
    required: bool = False

    def text(self, lang: str | None) -> str:
        return (self.label or {}).get(pick(lang), self.name)


@dataclass(frozen=True)
class OfferTemplate:
    id: str
    title: dict
    description: dict
    parameters: tuple[Parameter, ...]
    policy: dict

    @classmethod
    def from_json(cls, data: dict) -> OfferTemplate:
        params = tuple(
            Parameter(name, spec["type"], spec.get("default"), spec.get("min"), spec.get("max"), spec.get("label"),
                      spec.get("required", False))
            for name, spec in data.get("parameters", {}).items()
        )
        return cls(data["id"], data["title"], data.get("description", {}), params, data["policy"])

    def title_in(self, lang: str | None) -> str:
        return self.title.get(pick(lang), self.id)

    def description_in(self, lang: str | None) -> str:
        return self.description.get(pick(lang), "")


class TemplateParamError(ValueError):
    """A parameter is unknown, missing or has a wrong value; ``problem`` says which, in zh_CN and en."""

    def __init__(self, code: str, **args) -> None:
        self.problem = Problem(code, "", args)
        super().__init__(self.problem.en)


def coerce(param: Parameter, raw: object):
    """The parameter's value from text or a number; TemplateParamError when it does not fit."""
    text = str(raw).strip()
    value: Any  # an int, a Decimal or text, by the parameter's type
    if param.type == "integer":
        if not re.fullmatch(r"\d+", text):
            raise TemplateParamError("template_bad_value", name=param.name, value=text, detail_zh="应为正整数",
                                     detail_en="expected a whole number")
        value = int(text)
    elif param.type == "decimal":
        try:
            value = Decimal(text)
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or value <= 0:
            raise TemplateParamError("template_bad_value", name=param.name, value=text, detail_zh="应为大于零的数",
                                     detail_en="expected a number above zero")
        value = value.quantize(Decimal("0.01")) if value.as_tuple().exponent > -2 else value
    elif param.type == "region":
        value = text.upper()
        if not _REGION.fullmatch(value):
            raise TemplateParamError("template_bad_value", name=param.name, value=text,
                                     detail_zh="应为 ISO 3166 地区代码，如 CN 或 CN-SH",
                                     detail_en="expected an ISO 3166 code such as CN or CN-SH")
    else:
        value = text
        if not value:
            raise TemplateParamError("template_bad_value", name=param.name, value=text, detail_zh="不能为空",
                                     detail_en="it is empty")
    if param.min is not None and value < type(value)(param.min):
        raise TemplateParamError("template_bad_value", name=param.name, value=text, detail_zh=f"不能小于 {param.min}",
                                 detail_en=f"the smallest allowed is {param.min}")
    if param.max is not None and value > type(value)(param.max):
        raise TemplateParamError("template_bad_value", name=param.name, value=text, detail_zh=f"不能大于 {param.max}",
                                 detail_en=f"the largest allowed is {param.max}")
    return value


def instantiate(template: OfferTemplate, params: dict, uid: str) -> tuple[Policy, dict]:
    """The template's policy with ``params`` filled in (defaults for the rest), and the values used.

    Raises TemplateParamError. The returned policy still needs :func:`validate` (a template can be
    instantiated into a contradiction, e.g. a delete duty shorter than the use period).
    """
    known = {p.name: p for p in template.parameters}
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise TemplateParamError("template_unknown_param", name=unknown[0],
                                 known=", ".join(known) or "-")
    values: dict = {}
    for p in template.parameters:
        if p.name in params and params[p.name] not in (None, ""):
            values[p.name] = coerce(p, params[p.name])
        elif p.default is not None:
            values[p.name] = coerce(p, p.default)
        elif p.required:
            raise TemplateParamError("template_missing_param", name=p.name)
    doc = _fill(copy.deepcopy(template.policy), values)
    doc["@id"] = uid
    doc.setdefault("@type", "Offer")
    policy, problems = from_jsonld(doc)
    if problems or policy is None:  # a broken template file is a bug, not a user error
        raise ValueError(f"offer template {template.id} does not parse: {[p.en for p in problems]}")
    return policy, {k: str(v) for k, v in values.items()}


def _mentions_missing(node, values: dict) -> bool:
    if isinstance(node, str):
        return any(name not in values for name in _PLACEHOLDER.findall(node))
    if isinstance(node, dict):
        return any(_mentions_missing(v, values) for v in node.values())
    if isinstance(node, list):
        return any(_mentions_missing(v, values) for v in node)
    return False


def _fill(node, values: dict):
    if isinstance(node, str):
        return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), node)
    if isinstance(node, list):
        return [_fill(v, values) for v in node
                if not (isinstance(v, dict) and "leftOperand" in v and _mentions_missing(v, values))]
    if isinstance(node, dict):
        return {k: _fill(v, values) for k, v in node.items()}
    return node
