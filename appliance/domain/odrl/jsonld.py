"""Policies to and from ODRL 2.2 JSON-LD (compact form, ODRL context).

Written: ``@id``, ``@type`` (``Offer`` is ``odrl:Offer`` in both the ODRL and the DSP context),
``profile``, ``permission``/``prohibition``/``obligation`` arrays, each rule with ``action``,
``constraint`` (atomic: ``leftOperand``, ``operator``, ``rightOperand``, ``unit``) and ``duty``.
Typed values are JSON-LD value objects (``{"@value": "10", "@type": "xsd:integer"}``): numbers
travel as strings, so integers beyond 2^53 survive and the DSP schema (string, object or array
right operands) accepts them. Read: the same, plus ``uid`` for ``@id``, single objects where
arrays are expected, ``odrl:``-prefixed and full-IRI terms, ``{"@id": …}`` terms, plain JSON
numbers as right operands.
"""

from __future__ import annotations

from appliance.domain.odrl.model import Constraint, Duty, Policy, Rule
from appliance.domain.odrl.text import Problem
from appliance.domain.odrl.vocab import LEFT_OPERANDS, ODRL_CONTEXT, PROFILE, Datatype, short

MAX_ITEMS = 64  # rules of one kind in a policy, duties of a rule, constraints of a rule
MAX_VALUES = 1000  # values of one constraint (a list of allowed recipients may be long)
# (real offers have a handful; checking for contradictions compares rules pairwise, so a peer's
# policy of thousands would stall the node for seconds per message)
_MAX_INT_BITS = 13_000  # about 3,900 decimal digits, below Python's 4,300-digit limit on str(int)
_KNOWN_KEYS = {"@context", "@id", "uid", "@type", "profile", "permission", "prohibition", "obligation",
               "target", "assigner", "assignee"}


# --- writing -----------------------------------------------------------------------------------


def to_jsonld(policy: Policy, *, context: bool = True) -> dict:
    """The policy as compact JSON-LD; ``context=False`` when it is embedded (e.g. in a DCAT dataset)."""
    doc: dict = {"@context": ODRL_CONTEXT} if context else {}
    doc.update({"@id": policy.uid, "@type": policy.type})
    if policy.profile:
        doc["profile"] = policy.profile
    for key in ("target", "assigner", "assignee"):
        if getattr(policy, key):
            doc[key] = getattr(policy, key)
    if policy.permissions:
        doc["permission"] = [_rule(r) for r in policy.permissions]
    if policy.prohibitions:
        doc["prohibition"] = [_rule(r) for r in policy.prohibitions]
    if policy.obligations:
        doc["obligation"] = [_duty(d) for d in policy.obligations]
    for key, value in policy.extra.items():
        doc.setdefault(key, value)
    return doc


def _rule(rule: Rule) -> dict:
    out: dict = {"action": rule.action}
    if rule.constraints:
        out["constraint"] = [_constraint(c) for c in rule.constraints]
    if rule.duties:
        out["duty"] = [_duty(d) for d in rule.duties]
    return out


def _duty(duty: Duty) -> dict:
    out: dict = {"action": duty.action}
    if duty.constraints:
        out["constraint"] = [_constraint(c) for c in duty.constraints]
    return out


def _constraint(c: Constraint) -> dict:
    spec = LEFT_OPERANDS.get(c.left)
    datatype = spec.datatype if spec else None

    def value(text: str):
        if datatype is None or datatype is Datatype.STRING:
            return text
        return {"@value": text, "@type": str(datatype)}

    right = [value(v) for v in c.right] if isinstance(c.right, tuple) else value(c.right)
    out = {"leftOperand": c.left, "operator": c.operator, "rightOperand": right}
    if c.unit:
        out["unit"] = c.unit
    return out


# --- reading -----------------------------------------------------------------------------------


def from_jsonld(doc: object) -> tuple[Policy | None, list[Problem]]:
    """Read a policy; returns it with the problems met on the way (the policy is None if unusable)."""
    problems: list[Problem] = []
    if not isinstance(doc, dict):
        return None, [Problem("not_an_object", "policy")]
    uid = doc.get("@id", doc.get("uid"))
    if isinstance(uid, dict):
        uid = uid.get("@id")
    if not isinstance(uid, str) or not uid:
        problems.append(Problem("missing", "policy", {"name": "@id"}))
        uid = ""
    ptype = doc.get("@type", "Offer")
    if isinstance(ptype, list) and ptype:
        ptype = ptype[0]
    ptype = short(ptype) if isinstance(ptype, str) else ""  # validation names an unknown type
    permissions = tuple(_read_rule(r, f"permission[{i}]", problems, True)
                        for i, r in enumerate(_many(doc.get("permission"), "permission", problems)))
    prohibitions = tuple(_read_rule(r, f"prohibition[{i}]", problems, False)
                         for i, r in enumerate(_many(doc.get("prohibition"), "prohibition", problems)))
    obligations = tuple(_read_duty(d, f"obligation[{i}]", problems)
                        for i, d in enumerate(_many(doc.get("obligation"), "obligation", problems)))
    profile = doc.get("profile", PROFILE)
    policy = Policy(
        uid=uid, type=ptype, permissions=permissions, prohibitions=prohibitions, obligations=obligations,
        profile=profile if isinstance(profile, str) else PROFILE,
        target=_term(doc.get("target")), assigner=_term(doc.get("assigner")), assignee=_term(doc.get("assignee")),
        extra={k: v for k, v in doc.items() if k not in _KNOWN_KEYS},
    )
    return policy, problems


def _many(value, where: str, problems: list[Problem], most: int = MAX_ITEMS) -> list:
    """A list (a single value is a list of one); one longer than ``most`` is a problem, cut there."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if len(items) > most:
        problems.append(Problem("too_many", where, {"n": str(len(items)), "max": str(most)}))
        return items[:most]
    return items


def _term(value) -> str | None:
    if isinstance(value, dict):
        value = value.get("@id", value.get("uid"))
    return short(value) if isinstance(value, str) else None


def _action(rule: dict, where: str, problems: list[Problem]) -> str:
    action = rule.get("action")
    if isinstance(action, list) and len(action) == 1:
        action = action[0]
    if isinstance(action, dict):
        if "refinement" in action:
            problems.append(Problem("refinement", where))
        action = action.get("rdf:value", action)
        action = action.get("@id") if isinstance(action, dict) else action
    if not isinstance(action, str) or not action:
        problems.append(Problem("missing", where, {"name": "action"}))
        return ""
    return short(action)


def _read_rule(rule, where: str, problems: list[Problem], permission: bool) -> Rule:
    if not isinstance(rule, dict):
        problems.append(Problem("not_an_object", where))
        return Rule("")
    duties: tuple[Duty, ...] = ()
    if permission:
        duties = tuple(_read_duty(d, f"{where}.duty[{j}]", problems)
                       for j, d in enumerate(_many(rule.get("duty"), f"{where}.duty", problems)))
    return Rule(_action(rule, where, problems), _read_constraints(rule, where, problems), duties)


def _read_duty(duty, where: str, problems: list[Problem]) -> Duty:
    if not isinstance(duty, dict):
        problems.append(Problem("not_an_object", where))
        return Duty("")
    return Duty(_action(duty, where, problems), _read_constraints(duty, where, problems))


def _read_constraints(rule: dict, where: str, problems: list[Problem]) -> tuple[Constraint, ...]:
    out = []
    for k, c in enumerate(_many(rule.get("constraint"), f"{where}.constraint", problems)):
        at = f"{where}.constraint[{k}]"
        if not isinstance(c, dict):
            problems.append(Problem("not_an_object", at))
            continue
        if any(op in c for op in ("and", "or", "xone", "andSequence")):
            problems.append(Problem("logical_constraint", at))
            continue
        left, op = _term(c.get("leftOperand")), _term(c.get("operator"))
        right = _right(_many(c["rightOperand"], f"{at}.rightOperand", problems, MAX_VALUES)
                       if isinstance(c.get("rightOperand"), list) else c.get("rightOperand"))
        for name, value in (("leftOperand", left), ("operator", op), ("rightOperand", right)):
            if value is None:
                problems.append(Problem("missing", at, {"name": name}))
        if left is None or op is None or right is None:
            continue
        unit = _term(c.get("unit"))
        out.append(Constraint(left, op, right, unit))
    return tuple(out)


def _right(value):
    if isinstance(value, list):
        items = [_scalar(v) for v in value]
        return None if any(v is None for v in items) else tuple(items)
    return _scalar(value)


def _scalar(value) -> str | None:
    if isinstance(value, dict):
        value = value.get("@value", value.get("@id"))
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
        return "(a number of more than 4,000 digits)"  # str() refuses it; validation names the bad value
    if isinstance(value, (int, float)):
        return str(value)
    return value if isinstance(value, str) else None
