"""The five offer templates: they instantiate with parameters, validate, and read well in both languages."""

from datetime import datetime, timedelta, timezone

import pytest

from appliance.domain import odrl
from appliance.domain.odrl import AGGREGATE_ONLY
from appliance.errors import OfferTemplateError, PolicyInvalid
from appliance.services.catalog.offers import OfferTemplates, parse_spec

TEMPLATES = OfferTemplates()
NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


def make(template_id: str, **params) -> odrl.Policy:
    return TEMPLATES.offer(template_id, params, "urn:dsnode:offer:t").policy


def test_the_five_templates_are_there_with_titles_in_both_languages():
    ids = [t.id for t in TEMPLATES.all()]
    assert sorted(ids) == ["compute-only", "free-trial", "internal-30d", "per-use-paid", "research"]
    for t in TEMPLATES.all():
        assert t.title["zh_CN"] and t.title["en"] and t.description["zh_CN"] and t.description["en"]


# (template, params, phrases in zh_CN, phrases in en)
SUMMARIES = [
    ("free-trial", {}, ["在协议生效后 7 天内使用数据", "最多 10 次", "不得向他人分发数据", "不得将数据用于商业目的",
                        "您须在协议生效后 7 天内删除数据"],
     ["You may use the data at most 10 times, within 7 days", "You may not pass the data on to others or use the "
      "data commercially", "You must delete the data within 7 days"]),
    ("internal-30d", {"region": "cn-sh"}, ["在协议生效后 30 天内使用数据", "仅限在上海境内", "删除数据"],
     ["within 30 days after the agreement takes effect, only in Shanghai", "You must delete the data"]),
    ("per-use-paid", {"price": "5", "uses": "100"}, ["最多 100 次", "每次使用支付 5.00 元", "每次使用后通知数据提供方"],
     ["at most 100 times", "pay 5.00 CNY for each use and notify the provider of each use"]),
    ("compute-only", {"uses": "20"}, ["只获得汇总结果（不交付原始数据）", "最多 20 次", "不得读取（查看、下载）数据"],
     ["receive only aggregated results", "at most 20 times", "You may not read (view and download) the data"]),
    ("research", {"days": "90"}, ["仅限用于学术研究或非商业研究", "在协议生效后 90 天内", "不得将数据用于商业目的"],
     ["only for academic research or non-commercial research", "within 90 days",
      "You may not use the data commercially"]),
]


@pytest.mark.parametrize("template_id, params, zh, en", SUMMARIES, ids=[s[0] for s in SUMMARIES])
def test_every_template_summarises_in_chinese_and_english(template_id, params, zh, en):
    policy = make(template_id, **params)
    assert odrl.validate(policy) == []
    zh_text, en_text = odrl.summarize(policy, "zh_CN"), odrl.summarize(policy, "en")
    for phrase in zh:
        assert phrase in zh_text, zh_text
    for phrase in en:
        assert phrase in en_text, en_text


def test_parameters_fill_the_policy_and_optional_ones_drop_their_constraint():
    trial = make("free-trial", days="3", uses="2")
    assert [c.describe() for c in trial.permissions[0].constraints] == ["count lteq 2", "elapsedTime lteq P3D"]
    internal = make("internal-30d")
    assert [c.left for c in internal.permissions[0].constraints] == ["elapsedTime"]
    assert [c.left for c in make("internal-30d", region="CN").permissions[0].constraints] == ["elapsedTime", "spatial"]
    assert make("compute-only").permissions[0].action == AGGREGATE_ONLY


def test_an_instantiated_template_is_evaluated_like_any_offer():
    trial = make("free-trial", days="7", uses="2")
    ctx = {"now": NOW, "start": NOW - timedelta(days=1), "use_count": 2}
    assert [f.code for f in odrl.evaluate(trial, ctx)] == ["count_used_up"]
    assert odrl.evaluate(trial, {**ctx, "use_count": 1}) == []


@pytest.mark.parametrize("template_id, params, words", [
    ("free-trial", {"days": "0"}, "days"),
    ("free-trial", {"days": "seven"}, "seven"),
    ("free-trial", {"weeks": "2"}, "weeks"),
    ("per-use-paid", {}, "price"),
    ("per-use-paid", {"price": "-1"}, "-1"),
    ("internal-30d", {"region": "Shanghai"}, "Shanghai"),
    ("nonexistent", {}, "free-trial"),
])
def test_wrong_parameters_are_a_clear_error(template_id, params, words):
    with pytest.raises(OfferTemplateError) as e:
        TEMPLATES.offer(template_id, params, "urn:x")
    assert words in e.value.message("en") and words in e.value.message("zh_CN")
    assert template_id in e.value.message("en")


def test_a_template_can_still_be_made_contradictory_and_says_so():
    template = TEMPLATES.get("free-trial")
    policy, _ = odrl.instantiate(template, {"days": "7"}, "urn:x")
    assert odrl.validate(policy) == []
    broken = odrl.OfferTemplate(template.id, template.title, template.description, template.parameters,
                                {**template.policy, "prohibition": [{"action": "use"}]})
    policy, _ = odrl.instantiate(broken, {}, "urn:x")
    with pytest.raises(PolicyInvalid) as e:
        odrl.check(policy)
    assert [p.code for p in e.value.problems] == ["permit_and_prohibit"]


def test_the_cli_offer_spec():
    assert parse_spec("per-use-paid:price=5, uses=10") == ("per-use-paid", {"price": "5", "uses": "10"})
    assert parse_spec("research") == ("research", {})
    with pytest.raises(OfferTemplateError):
        parse_spec("free-trial:days")
