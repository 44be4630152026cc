"""The ODRL 2.2 terms the dsnode profile understands, and the few terms it adds.

Anything outside these tables is refused by validation with a message that names it, so an offer
from a peer never means something the node cannot enforce. Profile terms are absolute IRIs under
``urn:dsnode:odrl:`` (they need no context document, so the DSP context stays the only one).
"""

from __future__ import annotations

import re

from dataclasses import dataclass
from enum import StrEnum

ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
ODRL_NS = "http://www.w3.org/ns/odrl/2/"
PROFILE = "urn:dsnode:odrl-profile:2026-1"
NS = "urn:dsnode:odrl:"

AGGREGATE_ONLY = NS + "aggregateOnly"  # compute at the provider, receive only aggregated results
RECIPIENT_ORG = NS + "recipientOrg"  # the recipient's organisation (name or unified social credit code)
RECIPIENT_GRADE = NS + "recipientGrade"  # the recipient's membership grade in the space (integer)

POLICY_TYPES = ("Offer", "Agreement", "Set")

# Actions a permission or prohibition may name -> the action it is included in (odrl:includedIn).
RULE_ACTIONS: dict[str, str | None] = {
    "use": None,
    "read": "use",
    "reproduce": "use",
    "distribute": "use",
    "commercialize": "use",
    "derive": "use",
    "aggregate": "use",  # ODRL: put the asset into a composite collection (raw records included)
    AGGREGATE_ONLY: "use",
}
# Actions that hand raw records to the consumer: none of them fits with aggregate-only.
RAW_ACTIONS = frozenset({"use", "read", "reproduce", "distribute", "derive", "aggregate"})
DUTY_ACTIONS = frozenset({"delete", "inform", "compensate"})

OPERATORS = frozenset({"eq", "neq", "lt", "lteq", "gt", "gteq", "isA", "hasPart", "isPartOf",
                       "isAllOf", "isAnyOf", "isNoneOf"})
ORDER_OPS = frozenset({"lt", "lteq", "gt", "gteq"})
SET_OPS = frozenset({"isAnyOf", "isNoneOf"})
POSITIVE_OPS = frozenset({"eq", "isAnyOf", "isPartOf"})


class Datatype(StrEnum):
    DATETIME = "xsd:dateTime"
    INTEGER = "xsd:integer"
    DURATION = "xsd:duration"
    DECIMAL = "xsd:decimal"
    STRING = "xsd:string"


@dataclass(frozen=True)
class LeftOperand:
    datatype: Datatype
    operators: frozenset[str]
    in_rules: bool = True
    in_duties: bool = False


_TERMS = frozenset({"eq", "neq", "isAnyOf", "isNoneOf"})
LEFT_OPERANDS: dict[str, LeftOperand] = {
    "dateTime": LeftOperand(Datatype.DATETIME, ORDER_OPS, in_duties=True),
    "count": LeftOperand(Datatype.INTEGER, frozenset({"lt", "lteq"})),
    "elapsedTime": LeftOperand(Datatype.DURATION, frozenset({"lt", "lteq", "eq"}), in_duties=True),
    "purpose": LeftOperand(Datatype.STRING, _TERMS),
    "recipient": LeftOperand(Datatype.STRING, _TERMS),
    "spatial": LeftOperand(Datatype.STRING, _TERMS | {"isPartOf"}),
    RECIPIENT_ORG: LeftOperand(Datatype.STRING, _TERMS),
    RECIPIENT_GRADE: LeftOperand(Datatype.INTEGER, ORDER_OPS | {"eq"}),
    "payAmount": LeftOperand(Datatype.DECIMAL, frozenset({"eq"}), in_rules=False, in_duties=True),
}

CNY = "http://dbpedia.org/resource/Renminbi"
CURRENCIES = {CNY: "CNY"}

# Purposes with names people read (Data Privacy Vocabulary); any other purpose is shown as written.
DPV = "https://w3id.org/dpv#"
PURPOSES = {
    DPV + "AcademicResearch": ("学术研究", "academic research"),
    DPV + "NonCommercialResearch": ("非商业研究", "non-commercial research"),
    DPV + "ResearchAndDevelopment": ("研发", "research and development"),
    DPV + "ServiceProvision": ("提供服务", "providing a service"),
    DPV + "InternalResourceOptimisation": ("内部资源优化", "internal resource optimisation"),
    DPV + "Marketing": ("营销", "marketing"),
}

REGIONS = {
    "CN": ("中国", "China"),
    "CN-SH": ("上海", "Shanghai"),
    "CN-BJ": ("北京", "Beijing"),
    "CN-JS": ("江苏", "Jiangsu"),
    "CN-ZJ": ("浙江", "Zhejiang"),
    "CN-AH": ("安徽", "Anhui"),
    "CN-GD": ("广东", "Guangdong"),
}


PREFIXES = {DPV: "dpv:", "urn:dsnode:odrl:": "dsnode:"}


def compact(term: object) -> str:
    """``term`` with a well-known namespace written as its prefix, for people to read."""
    text = str(term)
    for namespace, prefix in PREFIXES.items():
        if text.startswith(namespace):
            return prefix + text[len(namespace):]
    return text


def purpose_term(text: str) -> str:
    """The purpose a person typed as the term offers use: a DPV IRI, ``dpv:Name``, ``Name`` or its
    Chinese or English name (any case) become the DPV IRI; anything else is kept as written."""
    wanted = text.strip()
    lower = wanted.lower()
    for iri, (zh, en) in PURPOSES.items():
        name = iri[len(DPV):]
        if lower in (iri.lower(), "dpv:" + name.lower(), name.lower(), en.lower()) or wanted == zh:
            return iri
    return wanted


def region_term(text: str) -> str:
    """The region a person typed as an ISO 3166 code: a code in any case, or a known region's name."""
    wanted = text.strip()
    for code, (zh, en) in REGIONS.items():
        if wanted.upper() == code or wanted == zh or wanted.lower() == en.lower():
            return code
    return wanted.upper() if re.fullmatch(r"[A-Za-z]{2}(-[A-Za-z0-9]{1,3})?", wanted) else wanted


def short(term: str) -> str:
    """``odrl:use`` and ``http://www.w3.org/ns/odrl/2/use`` -> ``use``; other IRIs unchanged."""
    if term.startswith(ODRL_NS):
        return term[len(ODRL_NS):]
    if term.startswith("odrl:"):
        return term[5:]
    return term


def includes(broader: str, action: str) -> bool:
    """Whether a rule on ``broader`` covers ``action`` (the same action or one included in it)."""
    seen: set[str] = set()
    current: str | None = action
    while current is not None and current not in seen:
        if current == broader:
            return True
        seen.add(current)
        current = RULE_ACTIONS.get(current)
    return False


def region_within(region: str, area: str) -> bool:
    """ISO 3166 codes: ``CN-SH`` lies within ``CN``; a code lies within itself."""
    region, area = region.upper(), area.upper()
    return region == area or region.startswith(area + "-")
