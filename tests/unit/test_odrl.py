"""ODRL policies: validation names every problem, evaluation says why not, JSON-LD round-trips."""

from datetime import datetime, timedelta, timezone

import pytest

from appliance.domain import odrl
from appliance.domain.odrl import AGGREGATE_ONLY, RECIPIENT_GRADE, RECIPIENT_ORG, Constraint, Duty, Policy, Rule
from appliance.errors import PolicyInvalid

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
XSD_INT = "xsd:integer"


def offer(*permissions, prohibitions=(), obligations=()) -> Policy:
    return Policy("urn:dsnode:offer:test", permissions=tuple(permissions), prohibitions=tuple(prohibitions),
                  obligations=tuple(obligations))


def use(*constraints, action="use", duties=()) -> Rule:
    return Rule(action, tuple(constraints), tuple(duties))


def codes(policy: Policy) -> list[str]:
    return [p.code for p in odrl.validate(policy)]


# --- validation ---------------------------------------------------------------------------------


def test_a_plain_offer_is_valid():
    assert odrl.validate(offer(use(Constraint("count", "lteq", 5)), prohibitions=[Rule("distribute")])) == []


@pytest.mark.parametrize("policy, code, named", [
    (offer(use(action="sing")), "unknown_action", "sing"),
    (offer(use(action="delete")), "duty_action_in_rule", "delete"),
    (offer(use(Constraint("weather", "eq", "sunny"))), "unknown_left_operand", "weather"),
    (offer(use(Constraint("count", "before", 3))), "unknown_operator", "before"),
    (offer(use(Constraint("purpose", "gt", "x"))), "operator_not_allowed", "gt"),
    (offer(use(Constraint("payAmount", "eq", "5"))), "left_operand_not_here", "payAmount"),
    (offer(use(Constraint("count", "lteq", "ten"))), "bad_value", "ten"),
    (offer(use(Constraint("dateTime", "lteq", "2026-12-31"))), "bad_value", "time zone"),
    (offer(use(Constraint("elapsedTime", "lteq", "P1M"))), "bad_value", "P1M"),
    (offer(use(), obligations=[Duty("dance")]), "unknown_duty_action", "dance"),
])
def test_unknown_terms_and_bad_values_are_named(policy, code, named):
    problems = odrl.validate(policy)
    assert [p.code for p in problems] == [code]
    assert named in problems[0].en and named in problems[0].zh


def test_an_empty_validity_period_is_a_contradiction():
    p = offer(use(Constraint("dateTime", "gteq", datetime(2026, 6, 1, tzinfo=timezone.utc)),
                  Constraint("dateTime", "lteq", datetime(2026, 5, 1, tzinfo=timezone.utc))))
    (problem,) = odrl.validate(p)
    assert problem.code == "period_empty"
    assert "2026-06-01" in problem.en and "2026-05-01" in problem.zh
    same_instant = offer(use(Constraint("dateTime", "gt", "2026-06-01T00:00:00Z"),
                             Constraint("dateTime", "lteq", "2026-06-01T00:00:00Z")))
    assert codes(same_instant) == ["period_empty"]


@pytest.mark.parametrize("constraint", [Constraint("count", "lteq", 0), Constraint("count", "lt", 1),
                                        Constraint("count", "lteq", -3)])
def test_a_use_count_that_allows_no_use_is_a_contradiction(constraint):
    assert codes(offer(use(constraint))) == ["count_not_positive"]


def test_a_zero_time_limit_is_a_contradiction():
    assert codes(offer(use(Constraint("elapsedTime", "lteq", "PT0S")))) == ["duration_not_positive"]


def test_grade_bounds_that_leave_nothing_are_a_contradiction():
    p = offer(use(Constraint(RECIPIENT_GRADE, "gteq", 3), Constraint(RECIPIENT_GRADE, "lteq", 2)))
    assert codes(p) == ["range_empty"]
    whole_numbers = offer(use(Constraint(RECIPIENT_GRADE, "gt", 2), Constraint(RECIPIENT_GRADE, "lt", 3)))
    assert codes(whole_numbers) == ["range_empty"]


def test_conditions_no_value_meets_are_a_contradiction():
    assert codes(offer(use(Constraint("purpose", "eq", "a"), Constraint("purpose", "eq", "b")))) == ["values_conflict"]
    assert codes(offer(use(Constraint("spatial", "isAnyOf", ["CN"]), Constraint("spatial", "isNoneOf", ["CN"])))) == \
        ["values_conflict"]
    assert codes(offer(use(Constraint("purpose", "isAnyOf", ["a", "b"]), Constraint("purpose", "neq", "a")))) == []


@pytest.mark.parametrize("permitted, prohibited", [("read", "read"), ("read", "use"), ("distribute", "distribute")])
def test_permitting_and_prohibiting_the_same_action_is_a_contradiction(permitted, prohibited):
    problems = odrl.validate(offer(use(action=permitted), prohibitions=[Rule(prohibited)]))
    assert [p.code for p in problems] == ["permit_and_prohibit"]
    assert permitted in problems[0].en


def test_a_broad_permission_narrowed_by_a_prohibition_is_fine():
    assert codes(offer(use(action="use"), prohibitions=[Rule("distribute"), Rule("commercialize")])) == []


def test_aggregate_only_with_raw_read_is_a_contradiction():
    problems = odrl.validate(offer(use(action=AGGREGATE_ONLY), use(action="read")))
    assert [p.code for p in problems] == ["aggregate_with_raw"]
    assert "read" in problems[0].en and "仅聚合" in problems[0].zh
    assert codes(offer(use(action=AGGREGATE_ONLY), prohibitions=[Rule("read")])) == []


def test_payment_duties_need_a_positive_amount():
    assert codes(offer(use(duties=[Duty("compensate")]))) == ["payment_missing"]
    assert codes(offer(use(duties=[Duty("compensate", (Constraint("payAmount", "eq", "0"),))]))) == \
        ["payment_not_positive"]
    assert codes(offer(use(duties=[Duty("compensate", (Constraint("payAmount", "eq", "1.50"),))]))) == []


def test_deleting_before_the_use_period_ends_is_a_contradiction():
    p = offer(use(Constraint("elapsedTime", "lteq", "P30D")),
              obligations=[Duty("delete", (Constraint("elapsedTime", "lteq", "P7D"),))])
    (problem,) = odrl.validate(p)
    assert problem.code == "delete_before_use_ends" and "P7D" in problem.en and "P30D" in problem.zh


def test_a_policy_without_rules_and_structural_problems_are_reported_together():
    with pytest.raises(PolicyInvalid) as e:
        odrl.parse({"@type": "Offer", "permission": [{"constraint": [{"or": []}]}, {"action": {"rdf:value": "use",
                                                                                             "refinement": []}}]})
    found = {p.code for p in e.value.problems}
    assert {"missing", "logical_constraint", "refinement"} <= found
    assert "@id" in e.value.message("en") and "action" in e.value.message("en")
    with pytest.raises(PolicyInvalid) as e:
        odrl.parse({"@id": "x", "@type": "Offer"})
    assert [p.code for p in e.value.problems] == ["empty"]
    assert "既没有许可也没有禁止" in e.value.message("zh_CN")


# --- evaluation ---------------------------------------------------------------------------------


def context(**kw):
    return {"now": NOW, "action": "use", **kw}


def failure_codes(policy, **kw):
    return [f.code for f in odrl.evaluate(policy, context(**kw))]


def test_a_validity_period_passes_inside_and_fails_outside_with_the_reason():
    p = offer(use(Constraint("dateTime", "gteq", "2026-02-01T00:00:00Z"),
                  Constraint("dateTime", "lt", "2026-04-01T00:00:00Z")))
    assert odrl.evaluate(p, context()) == []
    (early,) = odrl.evaluate(p, context(now=datetime(2026, 1, 15, tzinfo=timezone.utc)))
    assert early.code == "not_yet_valid" and early.constraint == "dateTime gteq 2026-02-01T00:00:00Z"
    assert "2026-02-01" in early.en and "尚未到有效期" in early.zh
    (late,) = odrl.evaluate(p, context(now=datetime(2026, 4, 1, tzinfo=timezone.utc)))
    assert late.code == "expired" and "已过有效期" in late.zh and "expired" in late.en


def test_a_use_count_counts_the_use_being_decided():
    p = offer(use(Constraint("count", "lteq", 3)))
    assert failure_codes(p, use_count=2) == []
    (f,) = odrl.evaluate(p, context(use_count=3))
    assert f.code == "count_used_up" and "limit is 3" in f.en and "上限 3 次" in f.zh


def test_a_purpose_must_be_stated_and_allowed():
    research = "https://w3id.org/dpv#AcademicResearch"
    p = offer(use(Constraint("purpose", "isAnyOf", [research])))
    assert failure_codes(p, purpose=research) == []
    (f,) = odrl.evaluate(p, context(purpose="marketing"))
    assert f.code == "mismatch" and "marketing" in f.en and "学术研究" in f.zh and "使用目的" in f.zh
    (f,) = odrl.evaluate(p, context())
    assert f.code == "not_stated" and "no purpose was given" in f.en


def test_recipient_did_organisation_and_grade():
    did = "did:key:z6MkRecipient"
    p = offer(use(Constraint("recipient", "eq", did), Constraint(RECIPIENT_ORG, "isAnyOf", ["示例制造"]),
                  Constraint(RECIPIENT_GRADE, "gteq", 2)))
    ok = {"did": did, "org": "示例制造", "grade": 3}
    assert failure_codes(p, recipient=ok) == []
    assert failure_codes(p, recipient={**ok, "did": "did:key:z6MkOther"}) == ["mismatch"]
    assert failure_codes(p, recipient={**ok, "org": "别家"}) == ["mismatch"]
    (f,) = odrl.evaluate(p, context(recipient={**ok, "grade": 1}))
    assert f.code == "mismatch" and "grade 2 or higher" in f.en and "接收方等级" in f.zh
    assert failure_codes(p, recipient=odrl.Recipient(did=did, org="示例制造")) == ["not_stated"]


def test_regions_match_within_their_country():
    p = offer(use(Constraint("spatial", "isPartOf", "CN")))
    assert failure_codes(p, region="CN-SH") == []
    (f,) = odrl.evaluate(p, context(region="DE"))
    assert f.code == "mismatch" and "China" in f.en and "中国" in f.zh
    outside = offer(use(Constraint("spatial", "isNoneOf", ["CN-SH"])))
    assert failure_codes(outside, region="CN-SH") == ["mismatch"]
    assert failure_codes(outside, region="CN-BJ") == []


def test_actions_follow_the_inclusion_of_use_and_prohibitions_apply():
    p = offer(use(), prohibitions=[Rule("distribute")])
    assert failure_codes(p, action="read") == []
    (f,) = odrl.evaluate(p, context(action="distribute"))
    assert f.code == "prohibited" and f.where == "prohibition[0]" and "分发" in f.zh
    compute = offer(use(action=AGGREGATE_ONLY), prohibitions=[Rule("read")])
    assert failure_codes(compute, action=AGGREGATE_ONLY) == []
    assert failure_codes(compute, action="read") == ["not_permitted", "prohibited"]
    assert failure_codes(p, action="fly") == ["unknown_action"]


def test_a_time_limit_after_the_agreement_needs_its_start():
    p = offer(use(Constraint("elapsedTime", "lteq", "P30D")))
    assert failure_codes(p, start=NOW - timedelta(days=29)) == []
    assert failure_codes(p, start=NOW - timedelta(days=31)) == ["elapsed"]
    assert failure_codes(p) == ["no_start"]


def test_the_duties_that_come_with_an_action():
    pay = Duty("compensate", (Constraint("payAmount", "eq", "2.00"),))
    p = offer(use(duties=[pay, Duty("inform")]), obligations=[Duty("delete")])
    assert [d.action for d in odrl.duties_for(p, "read")] == ["compensate", "inform", "delete"]


# --- JSON-LD ------------------------------------------------------------------------------------


def test_json_ld_round_trips_with_typed_values_and_big_integers_as_strings():
    big = 2**63
    p = offer(use(Constraint("count", "lteq", big), Constraint("dateTime", "lt", "2026-12-31T00:00:00Z")),
              prohibitions=[Rule("commercialize")])
    doc = odrl.to_jsonld(p)
    assert doc["@context"] == odrl.ODRL_CONTEXT and doc["@type"] == "Offer" and doc["profile"] == odrl.PROFILE
    count = doc["permission"][0]["constraint"][0]["rightOperand"]
    assert count == {"@value": str(big), "@type": XSD_INT}
    assert odrl.parse(doc) == p


def test_reading_accepts_the_usual_odrl_spellings():
    doc = {"uid": "urn:x", "@type": "odrl:Offer",
           "permission": {"action": {"@id": "http://www.w3.org/ns/odrl/2/use"},
                          "constraint": {"leftOperand": "odrl:count", "operator": {"@id": "odrl:lteq"},
                                         "rightOperand": 5}}}
    p = odrl.parse(doc)
    assert p.uid == "urn:x" and p.type == "Offer"
    assert p.permissions[0] == Rule("use", (Constraint("count", "lteq", "5"),))


def test_purposes_and_regions_typed_by_people_become_the_terms_offers_use():
    from appliance.domain.odrl.vocab import DPV, purpose_term, region_term
    for typed in ("学术研究", "academic research", "AcademicResearch", "dpv:academicresearch",
                  DPV + "AcademicResearch"):
        assert purpose_term(typed) == DPV + "AcademicResearch", typed
    assert purpose_term("质量改进") == "质量改进", "an unknown purpose is kept as written"
    assert [region_term(r) for r in ("上海", "shanghai", "cn-sh", "CN-SH", "us", "火星")] == \
        ["CN-SH", "CN-SH", "CN-SH", "CN-SH", "US", "火星"]


def test_a_policy_of_thousands_of_rules_is_refused_quickly_with_the_count():
    """Contradictions are found by comparing rules pairwise: 4,000 permissions and prohibitions in
    one 180 kB message took seconds per message before rules were bounded."""
    import time

    doc = {"@id": "urn:uuid:p", "@type": "Offer", "permission": [{"action": "read"}] * 4000,
           "prohibition": [{"action": "distribute"}] * 4000}
    started = time.perf_counter()
    with pytest.raises(PolicyInvalid) as e:
        odrl.parse(doc)
    assert time.perf_counter() - started < 0.5
    assert "permission has 4000 items; at most 64 are allowed" in str(e.value)
