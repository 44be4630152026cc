"""ODRL 2.2 policies for dsnode: the model, JSON-LD, validation, evaluation and summaries. Pure.

    policy = odrl.parse(doc)                       # JSON-LD -> Policy; PolicyInvalid lists every problem
    problems = odrl.validate(policy)               # [] when valid (check() raises PolicyInvalid instead)
    failures = odrl.evaluate(policy, {"now": now, "action": "read", "use_count": 3, "purpose": …})
    text = odrl.summarize(policy, "zh_CN")
    doc = odrl.to_jsonld(policy)

The profile (``PROFILE``) and its terms are described in ``docs/catalog-products.md``.
"""

from appliance.domain.odrl.evaluate import Context, Recipient, duties_for, evaluate, negotiable
from appliance.domain.odrl.jsonld import from_jsonld, to_jsonld
from appliance.domain.odrl.model import Constraint, Duty, Policy, Rule, format_duration, lexical, parse_duration, typed
from appliance.domain.odrl.summary import summarize
from appliance.domain.odrl.templates import OfferTemplate, Parameter, TemplateParamError, instantiate
from appliance.domain.odrl.text import Failure, Problem
from appliance.domain.odrl.validate import validate
from appliance.domain.odrl.vocab import (AGGREGATE_ONLY, DUTY_ACTIONS, LEFT_OPERANDS, ODRL_CONTEXT, PROFILE,
                                         RECIPIENT_GRADE, RECIPIENT_ORG, RULE_ACTIONS)
from appliance.errors import PolicyInvalid


def parse(doc: object) -> Policy:
    """A valid policy from JSON-LD; PolicyInvalid lists every problem (structure, vocabulary, contradictions)."""
    policy, problems = from_jsonld(doc)
    if policy is not None:
        problems += validate(policy)
    if problems:
        raise PolicyInvalid(problems)
    assert policy is not None  # from_jsonld gives no policy only with problems
    return policy


def check(policy: Policy) -> Policy:
    """``policy`` if valid, else PolicyInvalid listing every problem."""
    problems = validate(policy)
    if problems:
        raise PolicyInvalid(problems)
    return policy


__all__ = [
    "AGGREGATE_ONLY", "DUTY_ACTIONS", "LEFT_OPERANDS", "ODRL_CONTEXT", "PROFILE", "RECIPIENT_GRADE", "RECIPIENT_ORG",
    "RULE_ACTIONS", "Constraint", "Context", "Duty", "Failure", "OfferTemplate", "Parameter", "Policy", "Problem",
    "Recipient", "Rule", "TemplateParamError", "check", "duties_for", "evaluate", "format_duration", "from_jsonld",
    "instantiate", "lexical", "negotiable", "parse", "parse_duration", "summarize", "to_jsonld", "typed", "validate",
]
