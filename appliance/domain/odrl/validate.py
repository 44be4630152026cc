"""Validation: every problem of a policy at once, each naming where it is and what is wrong.

Checked: the vocabulary (actions, left operands, operators, where each may appear), values, and
contradictions that make an offer unusable or self-defeating: an empty validity period, a use
count of zero, a time limit of zero, conditions on one operand that no value meets, the same
action permitted and prohibited, aggregate-only next to raw access, a payment duty without a
positive amount, and data that must be deleted before the time to use it is over.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from appliance.domain.odrl.model import Constraint, Duty, Policy, typed
from appliance.domain.odrl.text import Problem
from appliance.domain.odrl.vocab import (AGGREGATE_ONLY, DUTY_ACTIONS, LEFT_OPERANDS, OPERATORS, POLICY_TYPES,
                                         RAW_ACTIONS, RULE_ACTIONS, Datatype, includes)


def validate(policy: Policy) -> list[Problem]:
    """Every problem of ``policy``; an empty list means it is valid."""
    problems: list[Problem] = []
    if policy.type not in POLICY_TYPES:
        problems.append(Problem("unknown_type", "policy", {"name": policy.type}))
    if not policy.permissions and not policy.prohibitions:
        problems.append(Problem("empty", "policy"))
    for where, rule in policy.rules():
        if rule.action in DUTY_ACTIONS:
            problems.append(Problem("duty_action_in_rule", where, {"name": rule.action}))
        elif rule.action not in RULE_ACTIONS:
            problems.append(Problem("unknown_action", where, {"name": rule.action}))
        problems += _constraints(rule.constraints, where, duty=False)
    for where, duty in policy.duties():
        if duty.action not in DUTY_ACTIONS:
            problems.append(Problem("unknown_duty_action", where, {"name": duty.action}))
        problems += _constraints(duty.constraints, where, duty=True)
        if duty.action == "compensate":
            problems += _payment(duty, where)
    problems += _conflicts(policy)
    return problems


def _constraints(constraints: Iterable[Constraint], where: str, *, duty: bool) -> list[Problem]:
    problems: list[Problem] = []
    good: dict[str, list[tuple[str, Constraint, object]]] = defaultdict(list)
    for k, c in enumerate(constraints):
        at = f"{where}.constraint[{k}]"
        spec = LEFT_OPERANDS.get(c.left)
        if spec is None:
            problems.append(Problem("unknown_left_operand", at, {"name": c.left}))
            continue
        if c.operator not in OPERATORS:
            problems.append(Problem("unknown_operator", at, {"name": c.operator}))
            continue
        if c.operator not in spec.operators:
            problems.append(Problem("operator_not_allowed", at, {"name": c.operator, "left": c.left}))
            continue
        if not (spec.in_duties if duty else spec.in_rules):
            problems.append(Problem("left_operand_not_here", at, {"name": c.left}))
            continue
        try:
            value = typed(c)
        except ValueError as e:
            problems.append(Problem("bad_value", at, {"left": c.left, "detail": str(e)}))
            continue
        good[c.left].append((at, c, value))
    for left, items in good.items():
        datatype = LEFT_OPERANDS[left].datatype
        if datatype is Datatype.STRING:
            problems += _set_conflict(left, items, where)
        elif datatype is not Datatype.DECIMAL:
            problems += _range(left, datatype, items, where)
    return problems


def _range(left: str, datatype: Datatype, items, where: str) -> list[Problem]:
    """Lower and upper bounds of one ordered operand: is anything left between them?"""
    lo = hi = None  # (value, inclusive, constraint)
    for _, c, v in items:
        if c.operator in ("gt", "gteq", "eq") and (lo is None or v > lo[0] or (v == lo[0] and c.operator == "gt")):
            lo = (v, c.operator != "gt", c)
        if c.operator in ("lt", "lteq", "eq") and (hi is None or v < hi[0] or (v == hi[0] and c.operator == "lt")):
            hi = (v, c.operator != "lt", c)
    if hi is not None and left in ("count", "elapsedTime"):
        if left == "count":
            most = hi[0] if hi[1] else hi[0] - 1
            if most <= 0:
                return [Problem("count_not_positive", where, {"n": str(most)})]
        elif hi[0].total_seconds() <= 0:
            return [Problem("duration_not_positive", where, {"value": hi[2].right})]
    if lo is None or hi is None:
        return []
    empty = lo[0] > hi[0] or (lo[0] == hi[0] and not (lo[1] and hi[1]))
    if datatype is Datatype.INTEGER and not empty:  # whole numbers: gt 2 and lt 3 leaves nothing
        first = lo[0] if lo[1] else lo[0] + 1
        last = hi[0] if hi[1] else hi[0] - 1
        empty = first > last
    if not empty:
        return []
    if datatype is Datatype.DATETIME:
        return [Problem("period_empty", where, {"start": lo[2].right, "end": hi[2].right})]
    return [Problem("range_empty", where, {"left": left, "detail": f"{lo[2].describe()}; {hi[2].describe()}"})]


def _set_conflict(left: str, items, where: str) -> list[Problem]:
    """eq/isAnyOf narrow the allowed values, neq/isNoneOf remove some: is any value left?"""
    allowed: set | None = None
    banned: set = set()
    for _, c, v in items:
        values = set(v) if isinstance(v, tuple) else {v}
        if c.operator in ("eq", "isAnyOf"):
            allowed = values if allowed is None else allowed & values
        elif c.operator in ("neq", "isNoneOf"):
            banned |= values
    if allowed is not None and not (allowed - banned):
        return [Problem("values_conflict", where, {"left": left})]
    return []


def _payment(duty: Duty, where: str) -> list[Problem]:
    amounts = [c for c in duty.constraints if c.left == "payAmount"]
    if not amounts:
        return [Problem("payment_missing", where)]
    out = []
    for c in amounts:
        try:
            value = typed(c)
        except ValueError:
            continue  # already reported as bad_value
        if value <= 0:
            out.append(Problem("payment_not_positive", where, {"value": c.right}))
    return out


def _conflicts(policy: Policy) -> list[Problem]:
    problems: list[Problem] = []
    for i, p in enumerate(policy.permissions):
        for j, q in enumerate(policy.prohibitions):
            if not q.constraints and p.action and includes(q.action, p.action):
                problems.append(Problem("permit_and_prohibit", "policy", {
                    "name": p.action, "permission": f"permission[{i}]", "prohibition": f"prohibition[{j}]"}))
    if any(p.action == AGGREGATE_ONLY for p in policy.permissions):
        for i, p in enumerate(policy.permissions):
            if p.action in RAW_ACTIONS:
                problems.append(Problem("aggregate_with_raw", f"permission[{i}]", {"name": p.action}))
    problems += _delete_before_use_ends(policy)
    return problems


def _upper_elapsed(constraints: Iterable[Constraint]):
    best = None
    for c in constraints:
        if c.left == "elapsedTime" and c.operator in ("lt", "lteq", "eq"):
            try:
                value = typed(c)
            except ValueError:
                continue
            if best is None or value < best[0]:
                best = (value, c.right)
    return best


def _delete_before_use_ends(policy: Policy) -> list[Problem]:
    deletes = [_upper_elapsed(d.constraints) for _, d in policy.duties() if d.action == "delete"]
    deletes = [d for d in deletes if d is not None]
    if not deletes:
        return []
    delete = min(deletes)
    for p in policy.permissions:
        use = _upper_elapsed(p.constraints)
        if use is not None and use[0] > delete[0]:
            return [Problem("delete_before_use_ends", "policy", {"delete": delete[1], "use": use[1]})]
    return []
