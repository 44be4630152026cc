"""Evaluation: may this action happen now, in this context, under this (valid) policy?

``evaluate(policy, context)`` returns the reasons it may not, each naming the rule and the
constraint and saying why in zh_CN and en; an empty list means the action is allowed. The
contracts feature calls it at negotiation, usage control at every use. Duties are not checked
here (whether a payment arrived is not the policy's knowledge): :func:`duties_for` lists the
duties that come with an allowed action.

Semantics (dsnode profile): an action is allowed when some permission on it (or on an action that
includes it, e.g. ``use`` includes ``read``) has all its constraints met, and no prohibition on it
applies (a prohibition applies when all its constraints are met). ``count`` limits the total
number of uses including the one being decided; ``elapsedTime`` counts from the agreement's
start; ``spatial`` matches ISO 3166 codes hierarchically (``CN-SH`` is within ``CN``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from appliance.domain.odrl.model import Constraint, Duty, Policy, typed
from appliance.domain.odrl.summary import ACTIONS, describe_condition
from appliance.domain.odrl.text import SUBJECTS, Failure
from appliance.domain.odrl.vocab import (PURPOSES, RECIPIENT_GRADE, RECIPIENT_ORG, REGIONS, RULE_ACTIONS, compact,
                                         includes, region_within, short)


@dataclass(frozen=True)
class Recipient:
    did: str | None = None
    org: str | None = None
    grade: int | None = None


@dataclass(frozen=True)
class Context:
    """What is known about the use being decided."""

    now: datetime
    action: str = "use"
    use_count: int = 0  # uses already made under this policy, not counting this one
    purpose: str | None = None
    recipient: Recipient = field(default_factory=Recipient)
    region: str | None = None
    start: datetime | None = None  # when the agreement took effect (for elapsedTime)

    @classmethod
    def of(cls, data: Context | Mapping) -> Context:
        """Accept a Context or a plain mapping (``recipient`` may be a mapping with did/org/grade)."""
        if isinstance(data, Context):
            return data
        values = dict(data)
        rec = values.get("recipient")
        if isinstance(rec, Mapping):
            values["recipient"] = Recipient(**rec)
        elif rec is None:
            values.pop("recipient", None)
        return cls(**values)


def evaluate(policy: Policy, context: Context | Mapping) -> list[Failure]:
    """Why ``context.action`` is not allowed now (empty when it is). ``policy`` must be valid."""
    ctx = Context.of(context)
    action = short(ctx.action)
    if action not in RULE_ACTIONS:
        return [Failure("unknown_action", "policy", {"action": action})]
    covering = [(f"permission[{i}]", p) for i, p in enumerate(policy.permissions) if includes(p.action, action)]
    failures: list[Failure] = []
    if not covering:
        failures.append(Failure("not_permitted", "policy", _action_names(action)))
    else:
        results = [[f for c in p.constraints for f in _check(c, where, ctx)] for where, p in covering]
        if all(results):
            shortest = min(results, key=len)
            failures += shortest
    for i, q in enumerate(policy.prohibitions):
        if includes(q.action, action) and not any(_check(c, "", ctx) for c in q.constraints):
            failures.append(Failure("prohibited", f"prohibition[{i}]", _action_names(action)))
    return failures


# What the offer's constraints say that a negotiation cannot know yet: checked at each use instead.
_UNKNOWN_AT_NEGOTIATION = frozenset({"not_stated", "no_start"})


def negotiable(policy: Policy, context: Context | Mapping) -> list[Failure]:
    """Why the terms of ``policy`` cannot be agreed with this recipient, purpose and region now
    (empty when they can): the constraints of each permission are checked against what the request
    states; a value it does not state is not a failure here (usage control checks it at each use).
    The permission with the fewest failures speaks for the policy, as in :func:`evaluate`."""
    ctx = Context.of(context)
    if not policy.permissions:
        return []
    results = []
    for i, p in enumerate(policy.permissions):
        found = [f for c in p.constraints for f in _check(c, f"permission[{i}]", ctx)]
        results.append([f for f in found if f.code not in _UNKNOWN_AT_NEGOTIATION])
    return [] if not all(results) else min(results, key=len)


def duties_for(policy: Policy, action: str) -> list[Duty]:
    """The duties that come with ``action``: those of the permissions covering it, and every obligation."""
    action = short(action)
    out = [d for p in policy.permissions if includes(p.action, action) for d in p.duties]
    return out + list(policy.obligations)


def _check(c: Constraint, where: str, ctx: Context) -> list[Failure]:
    value = typed(c)

    def fail(code: str, **args) -> list[Failure]:
        return [Failure(code, where, {**_names(c), **args})]

    if c.left == "dateTime":
        if _compare(ctx.now, c.operator, value):
            return []
        return fail("not_yet_valid" if c.operator in ("gt", "gteq") else "expired", value=c.right)
    if c.left == "count":
        if _compare(ctx.use_count + 1, c.operator, value):
            return []
        return fail("count_used_up", limit=value if c.operator == "lteq" else value - 1, used=ctx.use_count)
    if c.left == "elapsedTime":
        if ctx.start is None:
            return fail("no_start", value=c.right)
        return [] if _compare(ctx.now - ctx.start, "lteq" if c.operator == "eq" else c.operator, value) else \
            fail("elapsed", value=c.right)
    actual = _context_value(c.left, ctx)
    subject = SUBJECTS.get(c.left)
    if subject is None:
        return fail("unknown_constraint")
    what = {"what_zh": subject[0], "what_en": subject[1]}
    if actual is None:
        return [Failure("not_stated", where, {**_names(c), **what})]
    if c.left == RECIPIENT_GRADE:
        ok = _compare(actual, c.operator, value)
    else:
        ok = _match(c.left, actual, c.operator, value)
    return [] if ok else [Failure("mismatch", where, {**_names(c), "value": actual, **_labels(c.left, actual), **what})]


def _labels(left: str, value) -> dict:
    """A purpose or region given by the request, in words (``value_zh``/``value_en``) when it has a name."""
    table = {"purpose": PURPOSES, "spatial": REGIONS}.get(left)
    entry = table.get(value if left == "purpose" else str(value).upper()) if table else None
    if entry is None:
        return {"value_zh": compact(value), "value_en": compact(value)}
    return {"value_zh": entry[0], "value_en": entry[1]}


def _action_names(action: str) -> dict:
    zh, en = ACTIONS[action]
    return {"name": action, "action_zh": zh, "action_en": en}


def _names(c: Constraint) -> dict:
    """The constraint as written and in words, for a failure's message."""
    return {"constraint": c.describe(), "condition_zh": describe_condition(c, "zh_CN"),
            "condition_en": describe_condition(c, "en")}


def _context_value(left: str, ctx: Context):
    return {"purpose": ctx.purpose, "recipient": ctx.recipient.did, "spatial": ctx.region,
            RECIPIENT_ORG: ctx.recipient.org, RECIPIENT_GRADE: ctx.recipient.grade}.get(left)


_COMPARE = {"lt": lambda a, b: a < b, "lteq": lambda a, b: a <= b, "gt": lambda a, b: a > b,
            "gteq": lambda a, b: a >= b, "eq": lambda a, b: a == b, "neq": lambda a, b: a != b}


def _compare(actual, operator: str, value) -> bool:
    return _COMPARE[operator](actual, value)


def _match(left: str, actual: str, operator: str, value) -> bool:
    values = value if isinstance(value, tuple) else (value,)
    if left == "spatial":
        hit = any(region_within(actual, v) for v in values)
    else:
        hit = actual in values
    return hit if operator in ("eq", "isAnyOf", "isPartOf") else not hit
