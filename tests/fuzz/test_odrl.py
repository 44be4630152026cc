"""ODRL policies from peers: any JSON reads into a policy and its problems without raising, and a
policy that validates can then be evaluated, negotiated, summarised and written without raising
(validation and evaluation agree on what a value means)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from appliance.domain import odrl
from appliance.domain.odrl.vocab import DUTY_ACTIONS, LEFT_OPERANDS, OPERATORS, PURPOSES, RULE_ACTIONS
from appliance.errors import PolicyInvalid
from tests.fuzz.values import json_values, text
from tests.fuzzing import scaled

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=timezone.utc)

# Lexical values near every edge of the datatypes: what a peer may write in a right operand.
edge_values = st.sampled_from([
    "0", "1", "-1", "+3", "9" * 30, "1" * 5000, "１２", "1.5", "1e3", "NaN", "Infinity", "-0",
    "P30D", "PT12H", "PT0S", "P" + "9" * 20 + "W", "P99999999999D", "PT1.5S", "P1Y", "P", "PT", "P1DT",
    "2026-12-31T23:59:59Z", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2026-02-30T00:00:00Z",
    "２０２６-12-31T23:59:59Z", "2026-12-31T23:59:59.123456789+08:00", "CN", "CN-SH", "cn-sh", "",
    " ", "\ud800", "did:key:z6Mk", *PURPOSES,
])
values = edge_values | text
rights = values | st.lists(values, max_size=3) | st.builds(lambda v, t: {"@value": v, "@type": t}, values, text) \
    | json_values(max_leaves=4)
terms = st.sampled_from(sorted(LEFT_OPERANDS)) | text
operators = st.sampled_from(sorted(OPERATORS)) | text


@st.composite
def constraints(draw) -> object:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(json_values(max_leaves=6))
    if kind < 4:
        return {"leftOperand": draw(terms), "operator": draw(operators), "rightOperand": draw(rights),
                **({"unit": draw(text)} if draw(st.booleans()) else {})}
    left = draw(st.sampled_from(sorted(LEFT_OPERANDS)))  # well formed: only the value may be wrong
    return {"leftOperand": left, "operator": draw(st.sampled_from(sorted(LEFT_OPERANDS[left].operators))),
            "rightOperand": draw(edge_values | st.lists(edge_values, min_size=1, max_size=3))}


@st.composite
def duties(draw) -> object:
    return {"action": draw(st.sampled_from(sorted(DUTY_ACTIONS)) | text | json_values(max_leaves=3)),
            "constraint": draw(st.lists(constraints(), max_size=3))}


@st.composite
def rules(draw, permission: bool) -> object:
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values(max_leaves=6))
    rule = {"action": draw(st.sampled_from(sorted(RULE_ACTIONS)) | text | json_values(max_leaves=3)),
            "constraint": draw(st.lists(constraints(), max_size=4))}
    if permission and draw(st.booleans()):
        rule["duty"] = draw(st.lists(duties(), max_size=2))
    return rule


@st.composite
def policies(draw) -> object:
    doc = {"@id": draw(st.just("urn:uuid:1") | json_values(max_leaves=3)),
           "@type": draw(st.sampled_from(["Offer", "Agreement", "Set", ["Offer"]]) | json_values(max_leaves=3)),
           "permission": draw(st.lists(rules(True), max_size=3)),
           "prohibition": draw(st.lists(rules(False), max_size=2)),
           "obligation": draw(st.lists(duties(), max_size=2))}
    for key in ("target", "assigner", "assignee", "profile"):
        if draw(st.booleans()):
            doc[key] = draw(json_values(max_leaves=3))
    return doc


contexts = st.fixed_dictionaries({
    "now": st.just(NOW),
    "action": st.sampled_from(sorted(RULE_ACTIONS)),
    "use_count": st.integers(0, 10**6),
    "purpose": st.none() | st.sampled_from(sorted(PURPOSES)) | text,
    "region": st.none() | st.sampled_from(["CN", "CN-SH", "US"]) | text,
    "start": st.none() | st.just(NOW - timedelta(days=3)),
    "recipient": st.fixed_dictionaries({"did": st.none() | text, "org": st.none() | text,
                                         "grade": st.none() | st.integers(-5, 10)}),
})


@scaled(800)  # about 15 ms each: summaries in both languages, a JSON-LD round trip
@given(doc=policies() | json_values(), context=contexts)
def test_any_policy_document_is_read_or_refused_and_a_valid_one_can_be_used(doc, context):
    policy, problems = odrl.from_jsonld(doc)
    if policy is None:
        assert problems
        return
    problems = problems + odrl.validate(policy)
    try:
        odrl.parse(doc)
    except PolicyInvalid as e:
        assert problems and str(e)
        return
    assert not problems
    odrl.evaluate(policy, context)
    odrl.negotiable(policy, context)
    for language in ("zh_CN", "en"):
        assert odrl.summarize(policy, language)
    assert odrl.parse(odrl.to_jsonld(policy)) == policy
